/** How the mirror classifies and records errors (kept here so the mirror imports nothing from services.ts). */
import { isProtocolError } from '../../../shared/errors.ts';

export interface ErrorNote {
  code: string;
  message: string;
  at: string;
}

/** Whether an error means the server could not be reached at all (as opposed to refusing). */
export function isUnreachable(error: unknown): boolean {
  return (
    isProtocolError(error, 'ERR_UPSTREAM_UNREACHABLE') ||
    isProtocolError(error, 'ERR_UPSTREAM_TIMEOUT') ||
    isProtocolError(error, 'ERR_DISCOVERY_UNREACHABLE') ||
    isProtocolError(error, 'ERR_DISCOVERY_TIMEOUT')
  );
}

/** An error as the sync status shows it: its registry code (ERR_INTERNAL for anything else) and message. */
export function errorNote(error: unknown, at: Date = new Date()): ErrorNote {
  const code = isProtocolError(error) ? error.code : 'ERR_INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  return { code, message: message.slice(0, 2000), at: at.toISOString() };
}
