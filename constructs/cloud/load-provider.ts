/**
 * Loads one resource class of a cdktf provider package that gpufabric declares as an optional peer
 * dependency. A one-cloud team installs one provider; importing another cloud's entry point then fails
 * here with the install command instead of Node's bare "Cannot find package". Each resource is loaded by
 * its own module path (lib/<resource>/index.js), so loading a node pool does not load a whole provider's
 * thousand-odd resource classes.
 */
import { createRequire } from "node:module";

/** The provider versions gpufabric's constructs are written against (the optional peer dependency ranges). */
export const PROVIDER_PACKAGES = {
  "@cdktf/provider-aws": "~20.1.0",
  "@cdktf/provider-google": "^16.12.1",
  "@cdktf/provider-azurerm": "^14.23.1",
} as const;

const require = createRequire(import.meta.url);

export function loadProviderModule<T>(pkg: keyof typeof PROVIDER_PACKAGES, path: string, entryPoint: string): T {
  try {
    return require(`${pkg}/${path}`) as T;
  } catch (err) {
    if ((err as { code?: string }).code !== "MODULE_NOT_FOUND") throw err;
    const range = PROVIDER_PACKAGES[pkg];
    const installed = installedVersion(pkg);
    // An installed provider without the module is another major version, whose resources moved or were renamed.
    const problem = installed === undefined ? "which is not installed" : `but the installed ${installed} has no ${path}`;
    throw new Error(`${entryPoint} needs the optional peer dependency ${pkg}@'${range}', ${problem}: run npm install ${pkg}@'${range}'`, { cause: err });
  }
}

function installedVersion(pkg: string): string | undefined {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}
