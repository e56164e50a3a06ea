/**
 * The browser preview lists what the panel asked of the (simulated) host, beside the panel, so
 * a newcomer sees "open /…/checkouts/dunes.jpg" happen. Plain DOM: the list is outside React.
 */
import type { HostCall } from '../../../host/browser.ts';

export function showHostCalls(list: HTMLElement, calls: readonly HostCall[], everyMs = 500): () => void {
  let shown = 0;
  const quiet = new Set(['activeDocument', 'listLinks', 'onDocumentSaved']);
  const tick = () => {
    for (; shown < calls.length; shown++) {
      const call = calls[shown]!;
      if (quiet.has(call.method)) continue;
      const item = document.createElement('li');
      item.setAttribute('data-testid', 'host-call');
      item.textContent = `${call.method}(${call.args.map((a) => JSON.stringify(a)).join(', ')})`;
      list.appendChild(item);
    }
  };
  const timer = setInterval(tick, everyMs);
  tick();
  return () => clearInterval(timer);
}
