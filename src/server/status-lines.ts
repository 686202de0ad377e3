import { STATUS_CODES } from 'node:http';

/** Pre-rendered "200 OK" status lines for uWS writeStatus. */
export const STATUS_LINES: Record<number, string> = {};
for (const [code, text] of Object.entries(STATUS_CODES)) STATUS_LINES[Number(code)] = `${code} ${text}`;
STATUS_LINES[499] = '499 Client Closed Request';
