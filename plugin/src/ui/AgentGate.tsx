/**
 * Shown instead of the screens when the companion cannot be used: not running (how to start
 * it, and in UXP its address), or not paired (paste the token `imagine pair` prints). Saves
 * the panel still holds are counted, so the user knows nothing was lost.
 */
import { useState } from 'react';
import { parseAgentUrl, type AgentSettings } from '../settings.ts';
import { describeError } from './messages.ts';
import { Button } from './spectrum/Button.tsx';
import { TextField } from './spectrum/TextField.tsx';

export interface AgentGateProps {
  error: unknown;
  settings: AgentSettings;
  uxp: boolean;
  pendingCount: number;
  checking: boolean;
  onRetry: () => void;
  onSave: (settings: { baseUrl?: string; token?: string }) => void;
}

export function AgentGate(props: AgentGateProps) {
  const message = describeError(props.error);
  const [token, setToken] = useState('');
  const [address, setAddress] = useState(props.settings.baseUrl);
  const parsed = parseAgentUrl(address);
  const pairing = message.wayOut === 'pair';
  return (
    <div className="screen gate" data-testid="agent-gate" data-code={message.code}>
      <div className="message message-error" role="alert">
        <div className="message-title">{message.title}</div>
        <div className="message-detail">{message.detail}</div>
      </div>
      {pairing ? (
        <div className="form">
          <TextField label="Pairing token" type="password" value={token} onChange={setToken} onSubmit={() => token.trim() && props.onSave({ token })} testId="pairing-token" />
          <Button variant="cta" onClick={() => props.onSave({ token })} disabled={!token.trim()} testId="pair-button">
            Pair
          </Button>
        </div>
      ) : null}
      {props.uxp ? (
        <div className="form">
          <TextField label="Companion address" value={address} onChange={setAddress} invalid={!parsed.ok} testId="agent-address" />
          {!parsed.ok ? <div className="hint">{parsed.reason}</div> : null}
          <Button onClick={() => parsed.ok && props.onSave({ baseUrl: parsed.value })} disabled={!parsed.ok || parsed.value === props.settings.baseUrl}>
            Use this address
          </Button>
        </div>
      ) : null}
      <div className="row">
        <Button variant="primary" onClick={props.onRetry} disabled={props.checking} testId="gate-retry">
          {props.checking ? 'Checking…' : 'Try again'}
        </Button>
      </div>
      {props.pendingCount > 0 ? (
        <div className="message message-warning" data-testid="gate-pending">
          {props.pendingCount === 1 ? '1 save is' : `${props.pendingCount} saves are`} kept in this panel and will be sent when the companion is back.
        </div>
      ) : null}
    </div>
  );
}
