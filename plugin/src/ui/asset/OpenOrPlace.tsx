/**
 * Open (Photoshop) / place (InDesign) with the proxy-or-original choice. Rights that need
 * confirming turn the first click into a warning with "anyway" and "cancel".
 */
import { useRef, useState } from 'react';
import type { AgentAsset, Checkout, CheckoutRendition } from '../../../../shared/schemas/agent.ts';
import { useAction } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { Checkbox } from '../spectrum/Checkbox.tsx';
import { Dropdown } from '../spectrum/Dropdown.tsx';
import { ProgressBar } from '../spectrum/ProgressBar.tsx';
import { canCheckout, runCheckout, usesOf, type CheckoutUse } from './checkout-actions.ts';
import { rightsWarnings } from './rights.ts';

const RENDITIONS: { value: CheckoutRendition; label: string }[] = [
  { value: 'original', label: 'Original (full resolution)' },
  { value: 'proxy', label: 'Proxy (for placement only)' },
];

const VERBS: Record<CheckoutUse, { label: string; done: string; anyway: string }> = {
  open: { label: 'Open', done: 'Opened', anyway: 'Open anyway' },
  place: { label: 'Place', done: 'Placed', anyway: 'Place anyway' },
};

export interface OpenOrPlaceProps {
  asset: AgentAsset;
  onCheckout: (checkout: Checkout) => void;
  onBack: () => void;
}

export function OpenOrPlace({ asset, onCheckout, onBack }: OpenOrPlaceProps) {
  const panel = usePanel();
  const [rendition, setRendition] = useState<CheckoutRendition>('original');
  const [linked, setLinked] = useState(true);
  const [asking, setAsking] = useState<CheckoutUse | undefined>();
  const [progress, setProgress] = useState<Checkout | undefined>();
  const uses = usesOf(panel.host);
  const lastUse = useRef<CheckoutUse>(uses[0] ?? 'open');
  const action = useAction(async (use: CheckoutUse) => {
    const checkout = await runCheckout({
      client: panel.client,
      host: panel.host,
      asset,
      use,
      rendition,
      placeMode: linked ? 'linked' : 'embedded',
      confirmed: true,
      onProgress: (c) => {
        setProgress(c);
        onCheckout(c);
      },
    });
    onCheckout(checkout);
    return { checkout, use };
  });

  const start = (use: CheckoutUse) => {
    lastUse.current = use;
    const allowed = canCheckout({ host: panel.host, asset, use, confirmed: false });
    if (!allowed.ok && allowed.needsConfirmation) {
      setAsking(use);
      return;
    }
    setAsking(undefined);
    void action.run(use);
  };

  if (uses.length === 0) return <Notice>This application can neither open nor place images.</Notice>;
  const blocked = canCheckout({ host: panel.host, asset, use: uses[0]!, confirmed: true });
  return (
    <div className="form" data-testid="open-or-place">
      <Dropdown label="Use" value={rendition} options={RENDITIONS} onChange={setRendition} testId="rendition" />
      {uses.includes('place') ? (
        <Checkbox checked={linked} onChange={setLinked} testId="place-linked">
          Place linked (updates from the server show in Links)
        </Checkbox>
      ) : null}
      <div className="row">
        {uses.map((use) => (
          <Button key={use} variant={use === uses[0] ? 'cta' : 'primary'} onClick={() => start(use)} disabled={action.running || !blocked.ok} testId={`${use}-button`}>
            {VERBS[use].label}
          </Button>
        ))}
      </div>
      {asking ? (
        <div className="message message-warning" role="alertdialog" data-testid="rights-confirm">
          <div className="message-title">Check the rights before you {asking} this image</div>
          {rightsWarnings(asset.rights)
            .filter((w) => w.level === 'confirm')
            .map((w) => (
              <div key={w.kind} className="message-detail">
                {w.message}
              </div>
            ))}
          <div className="row">
            <Button
              variant="warning"
              onClick={() => {
                setAsking(undefined);
                void action.run(asking);
              }}
              testId="confirm-anyway"
            >
              {VERBS[asking].anyway}
            </Button>
            <Button onClick={() => setAsking(undefined)} testId="confirm-cancel">
              Cancel
            </Button>
          </div>
        </div>
      ) : null}
      {action.running ? (
        <ProgressBar label={progress?.state === 'downloading' ? `Downloading ${asset.filename}` : 'Preparing…'} done={progress?.progress.done ?? 0} total={progress?.progress.total ?? null} testId="checkout-progress" />
      ) : null}
      {action.result ? (
        <Notice kind="success" testId="checkout-done">
          {VERBS[action.result.use].done} {action.result.checkout.rendition === 'proxy' ? 'the proxy' : 'the original'} from{' '}
          <code data-testid="checkout-path">{action.result.checkout.path}</code>
        </Notice>
      ) : null}
      {action.error ? <ErrorMessage error={action.error} actions={{ retry: () => start(lastUse.current), back: onBack }} testId="checkout-error" /> : null}
    </div>
  );
}
