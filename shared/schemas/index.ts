export * from './discovery.ts';
export * from './asset.ts';
export * from './changes.ts';
export * from './problem.ts';
