/** Assertions shared by the limit and queue suites. */
import type { Test } from 'tap'

/** The 429 error a call was refused with; a test failure when the call succeeded. */
export async function refused(t: Test, p: Promise<unknown>, what: string): Promise<any> {
  try {
    await p
  } catch (e: any) {
    t.equal(e?.status, 429, `${what}: 429`)
    return e
  }
  t.fail(`${what}: succeeded, expected 429`)
  return null
}
