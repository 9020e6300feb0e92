/**
 * One bounded HTTP GET for the test clients: a time limit, a size limit on the body, an abort
 * signal, and errors that name the URL and the status.
 */
import { TestUtilsError } from "../errors.ts";

/** Options of {@link httpGet}. */
export interface HttpGetOptions {
  /** Give up after this long (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Largest body accepted (default 64 MiB). */
  readonly maxBytes?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** A response with its whole body. */
export interface HttpResponse {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** Milliseconds from sending the request to the last body byte. */
  readonly elapsedMs: number;
  text(): string;
}

/** GETs `url` and reads the body, whatever the status. Rejects with `TEST_UTILS_HTTP` on network errors, timeouts and oversize bodies. */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error("timeout")), timeoutMs);
  const started = performance.now();
  try {
    if (options.signal?.aborted) throw options.signal.reason;
    const response = await fetch(url, {
      signal: controller.signal,
      ...(options.headers ? { headers: { ...options.headers } } : {}),
    });
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new TestUtilsError(
        "TEST_UTILS_HTTP",
        `GET ${url}: body of ${declared} bytes exceeds ${maxBytes}`,
      );
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body) {
      for await (const chunk of response.body) {
        size += chunk.byteLength;
        if (size > maxBytes) {
          controller.abort();
          throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${url}: body exceeds ${maxBytes} bytes`);
        }
        chunks.push(chunk);
      }
    }
    const body = chunks.length === 1 ? chunks[0]! : concat(chunks, size);
    return {
      url,
      status: response.status,
      headers: response.headers,
      body,
      elapsedMs: performance.now() - started,
      text: () => new TextDecoder().decode(body),
    };
  } catch (error) {
    if (error instanceof TestUtilsError) throw error;
    if (options.signal?.aborted) {
      throw new TestUtilsError("TEST_UTILS_CLOSED", `GET ${url} was aborted`, { cause: error });
    }
    const reason = controller.signal.aborted
      ? `no response within ${timeoutMs} ms`
      : (error as Error).message + describeCause(error);
    throw new TestUtilsError("TEST_UTILS_HTTP", `GET ${url} failed: ${reason}`, { cause: error });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** GETs `url` and requires a 2xx status; the error carries the status and the start of the body. */
export async function httpGetOk(url: string, options: HttpGetOptions = {}): Promise<HttpResponse> {
  const response = await httpGet(url, options);
  if (response.status < 200 || response.status > 299) {
    const text = response.text().slice(0, 200);
    throw new TestUtilsError(
      "TEST_UTILS_HTTP",
      `GET ${url} answered ${response.status}${text ? `: ${text}` : ""}`,
    );
  }
  return response;
}

function describeCause(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (!cause) return "";
  return ` (${cause.code ?? cause.message ?? String(cause)})`;
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** The type of the first ISO BMFF box in `bytes` ("moof", "ftyp", ...), or undefined if there is none. */
export function firstBoxType(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength < 8) return undefined;
  return String.fromCharCode(bytes[4]!, bytes[5]!, bytes[6]!, bytes[7]!);
}

/** Throws `TEST_UTILS_MEDIA_INVALID` unless `bytes` starts with a box of type `type`. */
export function expectFirstBox(bytes: Uint8Array, type: string, what: string): void {
  const found = firstBoxType(bytes);
  if (found !== type) {
    throw new TestUtilsError(
      "TEST_UTILS_MEDIA_INVALID",
      `${what} should start with a '${type}' box but starts with ${found === undefined ? `${bytes.byteLength} byte(s)` : `'${found}'`}`,
    );
  }
}
