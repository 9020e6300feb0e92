/**
 * Secret comparison that takes the same time whatever the inputs. Both sides are HMAC'd under a
 * per-process random key first, so even the lengths never influence the timing, then the digests
 * are compared with `timingSafeEqual`.
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const COMPARE_KEY = randomBytes(32);

/** True when `a` and `b` are the same string, in time independent of where (or whether) they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHmac("sha256", COMPARE_KEY).update(a, "utf8").digest();
  const db = createHmac("sha256", COMPARE_KEY).update(b, "utf8").digest();
  return timingSafeEqual(da, db);
}
