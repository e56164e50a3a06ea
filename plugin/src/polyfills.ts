/**
 * What React 18 reaches for that some UXP versions lack. Each is installed only when missing,
 * so the browser preview runs on the real thing. (Gathered from Adobe's React starters and
 * bolt-uxp; not verifiable here without a host.)
 */
const g = globalThis as Record<string, unknown>;

if (typeof g.queueMicrotask !== 'function') {
  g.queueMicrotask = (fn: () => void) => void Promise.resolve().then(fn);
}

// React's development build measures with performance.mark/measure.
const perf = (g.performance ?? (g.performance = {})) as Record<string, unknown>;
for (const name of ['mark', 'measure', 'clearMarks', 'clearMeasures']) {
  if (typeof perf[name] !== 'function') perf[name] = () => undefined;
}
if (typeof perf.now !== 'function') perf.now = () => Date.now();

if (typeof g.matchMedia !== 'function') {
  g.matchMedia = (query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener() {},
    removeListener() {},
    addEventListener() {},
    removeEventListener() {},
    dispatchEvent: () => false,
  });
}

if (typeof g.MutationObserver !== 'function') {
  g.MutationObserver = class {
    observe() {}
    disconnect() {}
    takeRecords() {
      return [];
    }
  };
}

export {};
