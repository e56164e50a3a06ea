/** Connections: the servers the agent works with, their state, adding one, signing in, removing. */
import { useState } from 'react';
import type { Connection, SyncStatus } from '../../../../shared/schemas/agent.ts';
import { useAction, usePoll } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { TextField } from '../spectrum/TextField.tsx';
import { canAddConnection, canSignIn, describeSync, runAddConnection, runSignIn, STATE_LABELS, type AddForm } from './connection-actions.ts';

/** How often the offline-copy status is refreshed while the screen shows, ms. */
const SYNC_POLL_MS = 5_000;

export function ConnectionsScreen() {
  const panel = usePanel();
  const [sync, setSync] = useState<Record<string, SyncStatus>>({});
  usePoll(async () => {
    try {
      const items = await panel.client.sync();
      setSync(Object.fromEntries(items.map((s) => [s.connection, s])));
    } catch {
      // an agent without a mirror, or unreachable: the banner says so; the rows keep their last status
    }
  }, SYNC_POLL_MS);
  return (
    <div className="screen" data-testid="connections-screen">
      <sp-heading size="S">Servers</sp-heading>
      {panel.connections.length === 0 ? (
        <Notice testId="no-connections">No server yet: add one below (its address, domain or an imagine:// link).</Notice>
      ) : (
        <div className="list">
          {panel.connections.map((c) => (
            <ConnectionRow key={c.id} connection={c} sync={sync[c.id]} />
          ))}
        </div>
      )}
      <sp-divider size="S"></sp-divider>
      <AddConnection />
    </div>
  );
}

function ConnectionRow({ connection, sync }: { connection: Connection; sync: SyncStatus | undefined }) {
  const panel = usePanel();
  const [signingIn, setSigningIn] = useState(connection.state === 'unauthorized');
  const [token, setToken] = useState('');
  const [confirmRemove, setConfirmRemove] = useState(false);
  const signIn = useAction(async () => {
    const result = await runSignIn(panel.client, connection, token);
    setToken('');
    setSigningIn(false);
    panel.refreshStatus();
    return result;
  });
  const remove = useAction(async () => {
    await panel.client.removeConnection(connection.id);
    panel.refreshStatus();
  });
  const canSign = canSignIn(token);
  return (
    <div className="list-item connection" data-testid="connection" data-connection={connection.id} data-state={connection.state}>
      <div className="row spread">
        <div className="grow">
          <div className="item-title">{connection.name}</div>
          <div className="item-sub">{connection.origin}</div>
        </div>
        <span className={`badge badge-${connection.state}`} data-testid="connection-state">
          {STATE_LABELS[connection.state] ?? connection.state}
        </span>
      </div>
      {connection.lastError ? <div className="item-sub warning-text">{connection.lastError.message}</div> : null}
      {!connection.authenticated ? <div className="item-sub">Public access only (no token).</div> : null}
      <SyncLine sync={sync} />
      <div className="row">
        <Button action quiet onClick={() => setSigningIn(!signingIn)}>
          {connection.authenticated ? 'Change token' : 'Sign in'}
        </Button>
        {confirmRemove ? (
          <>
            <Button action onClick={() => void remove.run()} disabled={remove.running}>
              Remove {connection.name}?
            </Button>
            <Button action quiet onClick={() => setConfirmRemove(false)}>
              Keep
            </Button>
          </>
        ) : (
          <Button action quiet onClick={() => setConfirmRemove(true)}>
            Remove
          </Button>
        )}
      </div>
      {signingIn ? (
        <div className="sub-form">
          <TextField label="Token" type="password" value={token} onChange={setToken} onSubmit={() => canSign.ok && void signIn.run()} testId="sign-in-token" />
          <Button variant="primary" onClick={() => void signIn.run()} disabled={!canSign.ok || signIn.running}>
            {signIn.running ? 'Checking…' : 'Sign in'}
          </Button>
        </div>
      ) : null}
      {signIn.error ? <ErrorMessage error={signIn.error} actions={{ retry: () => void signIn.run(), 'sign-in': () => setSigningIn(true) }} /> : null}
      {remove.error ? <ErrorMessage error={remove.error} actions={{ retry: () => void remove.run() }} /> : null}
    </div>
  );
}

function AddConnection() {
  const panel = usePanel();
  const [form, setForm] = useState<AddForm>({ url: '', token: '', name: '' });
  const [added, setAdded] = useState<Connection | undefined>();
  const allowed = canAddConnection(form, panel.connections);
  const add = useAction(async () => {
    setAdded(undefined);
    const connection = await runAddConnection(panel.client, form);
    setAdded(connection);
    setForm({ url: '', token: '', name: '' });
    panel.refreshStatus();
    return connection;
  });
  const submit = () => {
    if (allowed.ok) void add.run();
  };
  return (
    <div className="form" data-testid="add-connection">
      <sp-heading size="XS">Add a server</sp-heading>
      <TextField
        label="Address"
        placeholder="https://images.example, a domain or imagine://…"
        value={form.url}
        onChange={(url) => setForm({ ...form, url })}
        onSubmit={submit}
        testId="add-url"
      />
      <TextField
        label="Token (optional)"
        type="password"
        value={form.token}
        onChange={(token) => setForm({ ...form, token })}
        onSubmit={submit}
        testId="add-token"
      />
      <TextField label="Name (optional)" value={form.name} onChange={(name) => setForm({ ...form, name })} onSubmit={submit} testId="add-name" />
      <div className="row">
        <Button variant="cta" onClick={submit} disabled={!allowed.ok || add.running} testId="add-connection-button">
          {add.running ? 'Connecting…' : 'Add server'}
        </Button>
        {!allowed.ok && form.url.trim() !== '' ? <span className="hint">{allowed.reason}</span> : null}
      </div>
      {add.error ? <ErrorMessage error={add.error} actions={{ retry: submit }} testId="add-error" /> : null}
      {added ? (
        <Notice kind="success" testId="added">
          Connected to {added.name} ({added.origin}).
        </Notice>
      ) : null}
    </div>
  );
}

function SyncLine({ sync }: { sync: SyncStatus | undefined }) {
  const { text, error } = describeSync(sync);
  return (
    <div data-testid="connection-sync">
      <div className="item-sub">{text}</div>
      {error ? <div className="item-sub warning-text">{error}</div> : null}
    </div>
  );
}
