/**
 * `import()` of what stays outside the CLI's one-file build (a package like `ws` or
 * node-llama-cpp, a Node built-in loaded late). That build runs as a vm.Script compiled from V8's
 * code cache (bin/panthers.ts), and on Node 20 a script deserialized from a cache made in another
 * process has lost its dynamic-import callback: every `import()` in it throws
 * ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING. So the entry hands the bundle its own `import` under a
 * registered symbol; without it (the module graph, tests, the SDK elsewhere) this is plain import().
 */
export const IMPORT_HOOK = Symbol.for('secret-panthers.import');

export function importModule<T = unknown>(specifier: string): Promise<T> {
  const hook = (globalThis as Record<symbol, unknown>)[IMPORT_HOOK] as ((s: string) => Promise<T>) | undefined;
  return hook ? hook(specifier) : (import(specifier) as Promise<T>);
}
