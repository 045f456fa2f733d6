/**
 * Where the switchyard package lives (from core/ in the sources, from dist/core/ when built or installed): the CLI
 * finds the bundled preset there, the gateway reads its version once at boot. Never on a request's path.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The nearest folder above this file with the package's package.json and its bundled preset. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'examples', 'default-preset'))) return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error('cannot find the switchyard package root')
    dir = up
  }
}

/** The package version (`x-litellm-version`, readiness, --version); '0.0.0' if the package cannot be found. */
export async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}
