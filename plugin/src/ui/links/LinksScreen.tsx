/**
 * Placed images of the active document (InDesign; the preview simulates one): each link from
 * an Imagine server shows whether a newer version exists, with "Update" to fetch and relink it.
 */
import { useEffect, useState } from 'react';
import { useAction } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { canUpdate, countOutOfDate, type LinkReport, type LinkState } from './out-of-date.ts';
import { checkLinks, runUpdateLink } from './update-link.ts';

const LABELS: Record<LinkState, string> = {
  current: 'Up to date',
  'out-of-date': 'Out of date',
  deleted: 'Deleted on the server',
  unknown: 'Server unreachable',
  missing: 'File missing',
  'not-imagine': 'Not from Imagine',
};

export function LinksScreen() {
  const panel = usePanel();
  const [reports, setReports] = useState<LinkReport[] | undefined>();
  const check = useAction(async () => {
    const fresh = await checkLinks(panel.client, panel.host);
    setReports(fresh);
    return fresh;
  });
  const update = useAction(async (targets: LinkReport[]) => {
    for (const report of targets) await runUpdateLink(panel.client, panel.host, report);
    await check.run();
  });
  useEffect(() => {
    void check.run();
    // Re-check when the document is saved (links may have changed).
    return panel.host.onDocumentSaved(() => void check.run());
  }, [panel.host]); // eslint-disable-line react-hooks/exhaustive-deps
  const outdated = reports ? reports.filter(canUpdate) : [];
  return (
    <div className="screen" data-testid="links-screen">
      <div className="row spread">
        <sp-heading size="S">Placed images</sp-heading>
        <Button action onClick={() => void check.run()} disabled={check.running} testId="check-links">
          {check.running ? 'Checking…' : 'Check'}
        </Button>
      </div>
      {check.error ? <ErrorMessage error={check.error} actions={{ retry: () => void check.run() }} /> : null}
      {update.error ? <ErrorMessage error={update.error} actions={{ retry: () => void check.run() }} testId="update-error" /> : null}
      {reports && reports.length === 0 ? <Notice>The active document has no placed images.</Notice> : null}
      {reports && countOutOfDate(reports) > 0 ? (
        <Notice kind="warning" testId="links-outdated">
          {countOutOfDate(reports)} placed image{countOutOfDate(reports) === 1 ? ' has' : 's have'} a newer version on the server.{' '}
          <Button action onClick={() => void update.run(outdated)} disabled={update.running} testId="update-all">
            Update all
          </Button>
        </Notice>
      ) : null}
      <div className="list">
        {(reports ?? []).map((report) => (
          <div className="list-item" key={report.link.id} data-testid="link" data-state={report.state}>
            <div className="row spread">
              <span className="item-title">{report.link.name}</span>
              <span className={`badge badge-link-${report.state}`}>{LABELS[report.state]}</span>
            </div>
            {report.checkout ? (
              <div className="item-sub">
                {report.checkout.baseVersion}
                {report.currentVersion && report.currentVersion !== report.checkout.baseVersion ? ` → ${report.currentVersion} on the server` : ''}
              </div>
            ) : null}
            {canUpdate(report) ? (
              <Button action onClick={() => void update.run([report])} disabled={update.running} testId="update-link">
                Update
              </Button>
            ) : null}
          </div>
        ))}
      </div>
    </div>
  );
}
