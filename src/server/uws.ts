import { createRequire } from 'node:module';
import type * as UWS from '@trufflesuite/uws-js-unofficial';

// The package is CommonJS; load it with require so the runtime shape is what we get
// (named ESM imports type-check but fail at run time: reference/toolchain.md).
const require = createRequire(import.meta.url);
const uWS = require('@trufflesuite/uws-js-unofficial') as typeof UWS;

/**
 * The package silently falls back to a slow JavaScript implementation when its native binary
 * does not load (or UWS_USE_FALLBACK is set). getParts is exported by the native module only.
 */
export function assertNativeUws(): void {
  if (typeof (uWS as unknown as { getParts?: unknown }).getParts !== 'function') {
    throw new Error(
      'uWebSockets.js native binary did not load: the slow JavaScript fallback is active. ' +
        `Node ${process.version} (${process.platform}-${process.arch}, ABI ${process.versions.modules}) needs a matching ` +
        'binary in @trufflesuite/uws-js-unofficial; unset UWS_USE_FALLBACK and reinstall with `npm ci`.',
    );
  }
}

export default uWS;
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
