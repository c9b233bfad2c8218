/** Retries an assertion until it passes or `ms` have gone by (for logs that peers write asynchronously). */
export async function eventually(check: () => void | Promise<void>, ms = 5000, every = 50): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, every));
    }
  }
}
