#!/usr/bin/env node
// The `imagine` command. The companion is TypeScript run through tsx's loader, so
// `npx imagine` works right after `npm install`, with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli.ts');
