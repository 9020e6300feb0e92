/**
 * The admin HTTP API as a fastify plugin. Everything it reads is injected through
 * {@link AdminPluginOptions}, so the plugin has no idea how the server is built and tests drive it
 * with `fastify.inject()`.
 *
 * Register it on its own instance (or under a prefix); it is encapsulated, so its CORS headers,
 * JSON parser, validator and error format apply to its routes only.
 */

import { Ajv, type ErrorObject } from "ajv";
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { AdminError } from "./errors.ts";
import type { AuthFailureEntry, LvqrMetrics } from "./metrics.ts";
import {
  CLIENT_SAMPLE_LIMITS,
  clientSampleBodySchema,
  clusterBroadcastsSchema,
  clusterNodesSchema,
  errorSchema,
  serverInfoSchema,
  sloEntrySchema,
  statsSchema,
  streamKeyIdParamsSchema,
  streamKeySchema,
  streamKeySpecBodySchema,
  streamsSchema,
} from "./schemas.ts";
import type { LatencyTracker } from "./slo.ts";
import type {
  AdminStats,
  AuthDecision,
  ClusterApi,
  MaybePromise,
  ServerInfo,
  ServerInfoInput,
  StreamKey,
  StreamKeyApi,
  StreamKeySpec,
  StreamSummary,
} from "./types.ts";

/** The error body of the stream-key routes when the server runs with `--no-streamkeys`. */
export const STREAM_KEYS_DISABLED_MESSAGE = "stream keys are disabled (--no-streamkeys)";

/** The error body of the cluster routes when the server is not clustered. */
export const CLUSTER_NOT_CONFIGURED_MESSAGE = "cluster is not configured";

/** Default limit on request bodies of the admin routes (they are small JSON objects). */
export const ADMIN_BODY_LIMIT: number = 64 * 1024;

/** What the admin plugin reads; the server supplies each part. */
export interface AdminPluginOptions {
  /**
   * Decides an admin request from its bearer token (`""` when there is no `Authorization: Bearer`
   * header). A deny answers 401 with the reason and counts `lvqr_auth_failures_total{entry="admin"}`.
   */
  authorizeAdmin(token: string): MaybePromise<AuthDecision>;
  /** Decides whether `token` (undefined when none was sent) may watch `broadcast`; used by client samples. */
  authorizeSubscribe(token: string | undefined, broadcast: string): MaybePromise<AuthDecision>;
  /** Live server totals for `/api/v1/stats`. */
  stats(): MaybePromise<AdminStats>;
  /** Live broadcasts for `/api/v1/streams` (the plugin sorts them by name). */
  streams(): MaybePromise<StreamSummary[]>;
  /** Version, addresses and modes for `/api/v1/server-info`. */
  serverInfo(): MaybePromise<ServerInfoInput>;
  /** The SLO tracker. Without it `/api/v1/slo` lists nothing and client samples answer 503. */
  tracker?: LatencyTracker;
  /** The metrics registry. Without it `/metrics` answers an empty body and nothing is counted. */
  metrics?: LvqrMetrics;
  /** The stream-key store. Without it (`--no-streamkeys`) the stream-key routes answer 404. */
  streamKeys?: StreamKeyApi;
  /** The cluster view. Without it the cluster routes answer 503. */
  cluster?: ClusterApi;
  /**
   * Require admin credentials on `/metrics`. Default false, as in the reference, so a Prometheus
   * scraper needs no token; set it when the admin port is reachable by people who should not see
   * broadcast names and traffic (denials count as `entry="metrics"`).
   */
  metricsRequireAuth?: boolean;
  /** Largest request body accepted, in bytes (default {@link ADMIN_BODY_LIMIT}). */
  bodyLimit?: number;
}

const ERROR_RESPONSES = { "4xx": errorSchema, "5xx": errorSchema };

const EXPOSED_HEADERS = "Location, Content-Type, ETag";

/**
 * The admin routes:
 *
 * | route | auth | answer |
 * |---|---|---|
 * | `GET /healthz` | open | 200 `ok` |
 * | `GET /metrics` | open, or admin with `metricsRequireAuth` | Prometheus text |
 * | `GET /api/v1/stats` | admin | {@link AdminStats} |
 * | `GET /api/v1/streams` | admin | {@link StreamSummary}[] |
 * | `GET /api/v1/slo` | admin | `{"broadcasts": SloEntry[]}` |
 * | `POST /api/v1/slo/client-sample` | admin or subscribe | 204; 503 without tracker, then 400s, then 401 |
 * | `GET /api/v1/streamkeys` | admin | `{"keys": StreamKey[]}` |
 * | `POST /api/v1/streamkeys` | admin | 201 StreamKey |
 * | `DELETE /api/v1/streamkeys/:id` | admin | 204 / 404 |
 * | `POST /api/v1/streamkeys/:id/rotate` | admin | 200 StreamKey / 404 |
 * | `GET /api/v1/server-info` | admin | {@link ServerInfo} |
 * | `GET /api/v1/cluster/nodes`, `/broadcasts` | admin | lists, or 503 without a cluster |
 *
 * Errors are `{"error": "..."}`. CORS allows any origin and exposes Location, Content-Type and
 * ETag; preflights need no token.
 */
export const adminPlugin: FastifyPluginAsync<AdminPluginOptions> = async (fastify, options) => {
  checkOptions(options);
  const { tracker, metrics, streamKeys, cluster } = options;
  const bodyLimit = options.bodyLimit ?? ADMIN_BODY_LIMIT;

  // Strict validation: no type coercion, and unknown fields stay (so `additionalProperties: false`
  // rejects them) instead of being silently stripped as fastify's default Ajv would.
  const ajv = new Ajv({
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    allowUnionTypes: true,
  });
  fastify.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  fastify.setSchemaErrorFormatter((errors, dataVar) => new Error(describeValidationErrors(errors, dataVar)));

  // Only JSON bodies; an empty or whitespace-only body is "no body" (rotate keeps the key's fields).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    "application/json",
    { parseAs: "string", bodyLimit },
    (_request, body, done) => {
      const text = body as string;
      if (text.trim() === "") {
        done(null, undefined);
        return;
      }
      try {
        done(null, JSON.parse(text));
      } catch (err) {
        done(
          new AdminError("ADMIN_BAD_REQUEST", `request body is not valid JSON: ${(err as Error).message}`),
          undefined,
        );
      }
    },
  );

  fastify.setErrorHandler((error: FastifyError | AdminError | Error, request, reply) => {
    const status = errorStatus(error);
    if (status >= 500 && !(error instanceof AdminError)) {
      request.log.error({ err: error }, "admin route failed");
    }
    const exposed = status < 500 || error instanceof AdminError || hasOwnStatus(error);
    return reply.code(status).send({ error: exposed ? error.message : "internal server error" });
  });

  fastify.addHook("onRequest", async (_request, reply) => {
    reply.header("access-control-allow-origin", "*");
    reply.header("access-control-expose-headers", EXPOSED_HEADERS);
  });

  const requireAdmin = (entry: AuthFailureEntry) => async (request: FastifyRequest, reply: FastifyReply) => {
    const decision = await options.authorizeAdmin(bearerToken(request.headers.authorization) ?? "");
    if (decision.allow) return;
    metrics?.authFailure(entry);
    reply.header("www-authenticate", 'Bearer realm="lvqr-admin"');
    return reply.code(401).send({ error: decision.reason });
  };
  const adminOnly = requireAdmin("admin");
  const noStore = async (_request: FastifyRequest, reply: FastifyReply) => {
    reply.header("cache-control", "no-store");
  };
  const streamKeysEnabled = async () => {
    if (streamKeys === undefined) throw new AdminError("ADMIN_NOT_FOUND", STREAM_KEYS_DISABLED_MESSAGE);
  };

  const preflightUrls = new Set<string>();
  const route = (spec: RouteOptions) => {
    fastify.route({ bodyLimit, ...spec });
    if (preflightUrls.has(spec.url)) return;
    preflightUrls.add(spec.url);
    fastify.route({ method: "OPTIONS", url: spec.url, handler: preflight });
  };
  const api = (spec: RouteOptions & { auth?: "admin" | "none" }) => {
    const hooks = spec.auth === "none" ? [noStore] : [noStore, adminOnly];
    const extra =
      spec.onRequest === undefined ? [] : Array.isArray(spec.onRequest) ? spec.onRequest : [spec.onRequest];
    const { auth: _auth, ...rest } = spec;
    route({ ...rest, onRequest: [...hooks, ...extra] });
  };

  route({
    method: "GET",
    url: "/healthz",
    handler: async (_request, reply) => reply.type("text/plain; charset=utf-8").send("ok"),
  });

  route({
    method: "GET",
    url: "/metrics",
    ...(options.metricsRequireAuth ? { onRequest: requireAdmin("metrics") } : {}),
    handler: async (_request, reply) => {
      const text = metrics === undefined ? "" : await metrics.render();
      return reply.type(metrics?.contentType ?? "text/plain; version=0.0.4; charset=utf-8").send(text);
    },
  });

  api({
    method: "GET",
    url: "/api/v1/stats",
    schema: { response: { 200: statsSchema, ...ERROR_RESPONSES } },
    handler: async () => options.stats(),
  });

  api({
    method: "GET",
    url: "/api/v1/streams",
    schema: { response: { 200: streamsSchema, ...ERROR_RESPONSES } },
    handler: async () => {
      const streams = [...(await options.streams())];
      return streams.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
  });

  api({
    method: "GET",
    url: "/api/v1/slo",
    schema: {
      response: {
        200: { type: "object", properties: { broadcasts: { type: "array", items: sloEntrySchema } } },
        ...ERROR_RESPONSES,
      },
    },
    handler: async () => ({ broadcasts: tracker?.snapshot() ?? [] }),
  });

  // Validation before auth, as in the reference: 503 (no tracker), then 400s, then 401, then 204.
  api({
    method: "POST",
    url: "/api/v1/slo/client-sample",
    auth: "none",
    schema: { body: clientSampleBodySchema, response: { 204: { type: "null" }, ...ERROR_RESPONSES } },
    onRequest: async () => {
      if (tracker === undefined) throw new AdminError("ADMIN_UNAVAILABLE", "latency tracking is not enabled");
    },
    handler: async (request, reply) => {
      const body = request.body as {
        broadcast: string;
        transport: string;
        ingest_ts_ms: number;
        render_ts_ms: number;
      };
      const broadcast = body.broadcast.trim();
      const transport = body.transport.trim();
      const limits = CLIENT_SAMPLE_LIMITS;
      if (broadcast.length === 0 || broadcast.length > limits.broadcastMaxLength) {
        throw new AdminError(
          "ADMIN_BAD_REQUEST",
          `broadcast must be 1 to ${limits.broadcastMaxLength} characters (after trimming)`,
        );
      }
      if (transport.length === 0 || transport.length > limits.transportMaxLength) {
        throw new AdminError(
          "ADMIN_BAD_REQUEST",
          `transport must be 1 to ${limits.transportMaxLength} characters (after trimming)`,
        );
      }
      if (body.render_ts_ms < body.ingest_ts_ms) {
        throw new AdminError("ADMIN_BAD_REQUEST", "render_ts_ms must not be earlier than ingest_ts_ms");
      }
      const latency = body.render_ts_ms - body.ingest_ts_ms;
      if (latency > limits.maxLatencyMs) {
        throw new AdminError(
          "ADMIN_BAD_REQUEST",
          `latency of ${latency} ms is over the ${limits.maxLatencyMs} ms limit; check the client clock`,
        );
      }
      const token = bearerToken(request.headers.authorization);
      const admin = await options.authorizeAdmin(token ?? "");
      if (!admin.allow) {
        const subscribe = await options.authorizeSubscribe(token, broadcast);
        if (!subscribe.allow) {
          metrics?.authFailure("slo_client_sample");
          reply.header("www-authenticate", 'Bearer realm="lvqr-admin"');
          return reply.code(401).send({ error: subscribe.reason });
        }
      }
      tracker!.record(broadcast, transport, latency);
      metrics?.clientSample(transport);
      return reply.code(204).send();
    },
  });

  api({
    method: "GET",
    url: "/api/v1/streamkeys",
    onRequest: streamKeysEnabled,
    schema: {
      response: {
        200: { type: "object", properties: { keys: { type: "array", items: streamKeySchema } } },
        ...ERROR_RESPONSES,
      },
    },
    handler: async () => ({ keys: await streamKeys!.list() }),
  });

  api({
    method: "POST",
    url: "/api/v1/streamkeys",
    onRequest: streamKeysEnabled,
    schema: { body: streamKeySpecBodySchema, response: { 201: streamKeySchema, ...ERROR_RESPONSES } },
    handler: async (request, reply) => {
      const key = await streamKeys!.mint(specOf(request.body) ?? {});
      metrics?.streamKeyChanged("mint");
      request.log.info({ streamKeyId: key.id }, "stream key minted");
      reply.header("location", `${fastify.prefix}/api/v1/streamkeys/${encodeURIComponent(key.id)}`);
      return reply.code(201).send(key);
    },
  });

  api({
    method: "DELETE",
    url: "/api/v1/streamkeys/:id",
    onRequest: streamKeysEnabled,
    schema: { params: streamKeyIdParamsSchema, response: { 204: { type: "null" }, ...ERROR_RESPONSES } },
    handler: async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await streamKeys!.revoke(id))) throw notFound(id);
      metrics?.streamKeyChanged("revoke");
      request.log.info({ streamKeyId: id }, "stream key revoked");
      return reply.code(204).send();
    },
  });

  api({
    method: "POST",
    url: "/api/v1/streamkeys/:id/rotate",
    onRequest: streamKeysEnabled,
    schema: {
      params: streamKeyIdParamsSchema,
      body: streamKeySpecBodySchema,
      response: { 200: streamKeySchema, ...ERROR_RESPONSES },
    },
    handler: async (request) => {
      const { id } = request.params as { id: string };
      const key: StreamKey | undefined = await streamKeys!.rotate(id, specOf(request.body));
      if (key === undefined) throw notFound(id);
      metrics?.streamKeyChanged("rotate");
      request.log.info({ streamKeyId: id }, "stream key rotated");
      return key;
    },
  });

  api({
    method: "GET",
    url: "/api/v1/server-info",
    schema: { response: { 200: serverInfoSchema, ...ERROR_RESPONSES } },
    handler: async () =>
      completeServerInfo(await options.serverInfo(), streamKeys !== undefined, cluster !== undefined),
  });

  const clusterRequired = async () => {
    if (cluster === undefined) throw new AdminError("ADMIN_UNAVAILABLE", CLUSTER_NOT_CONFIGURED_MESSAGE);
  };
  // The cluster package's store errors carry a code, not a status; an unreachable store is a 503.
  const clusterCall = async <T>(reply: FastifyReply, read: () => MaybePromise<T>): Promise<T> => {
    try {
      return await read();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "CLUSTER_STORE_UNAVAILABLE" || code === "CLUSTER_STORE_TIMEOUT") {
        reply.header("retry-after", "1");
        throw new AdminError("ADMIN_UNAVAILABLE", (err as Error).message, { cause: err });
      }
      throw err;
    }
  };

  api({
    method: "GET",
    url: "/api/v1/cluster/nodes",
    onRequest: clusterRequired,
    schema: { response: { 200: clusterNodesSchema, ...ERROR_RESPONSES } },
    handler: async (_request, reply) =>
      [...(await clusterCall(reply, () => cluster!.nodes()))].sort((a, b) =>
        a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
      ),
  });

  api({
    method: "GET",
    url: "/api/v1/cluster/broadcasts",
    onRequest: clusterRequired,
    schema: { response: { 200: clusterBroadcastsSchema, ...ERROR_RESPONSES } },
    handler: async (_request, reply) =>
      [...(await clusterCall(reply, () => cluster!.broadcasts()))].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      ),
  });
};

/**
 * The token of an `Authorization: Bearer <token>` header, or undefined when there is none. The
 * scheme is matched case-insensitively (RFC 9110), the token is taken as is.
 */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(value);
  return match === null ? undefined : match[1];
}

async function preflight(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  // Mirror the requested headers: `*` does not cover Authorization in the Fetch standard.
  const requested = request.headers["access-control-request-headers"];
  reply
    .code(204)
    .header("access-control-allow-methods", "GET, HEAD, POST, DELETE, OPTIONS")
    .header(
      "access-control-allow-headers",
      typeof requested === "string" ? requested : "Authorization, Content-Type",
    )
    .header("access-control-max-age", "600")
    .header("vary", "Access-Control-Request-Headers");
  await reply.send();
}

function specOf(body: unknown): StreamKeySpec | undefined {
  if (body === undefined || body === null) return undefined;
  const spec = body as StreamKeySpec;
  return {
    label: spec.label ?? null,
    broadcast: spec.broadcast ?? null,
    ttl_seconds: spec.ttl_seconds ?? null,
  };
}

function notFound(id: string): AdminError {
  return new AdminError("ADMIN_NOT_FOUND", `stream-key id ${JSON.stringify(id)} not found`);
}

function completeServerInfo(
  input: ServerInfoInput,
  streamKeysEnabled: boolean,
  clusterEnabled: boolean,
): ServerInfo {
  return {
    version: input.version,
    build_features: input.build_features ?? [],
    uptime_secs: input.uptime_secs,
    bound: { ...input.bound, whip: null, whep: null, srt: null, rtsp: null, signal: null },
    features: {
      mesh_enabled: false,
      cluster_enabled: clusterEnabled,
      archive_dir: null,
      record_dir: null,
      wasm_filter_chain_length: 0,
      auth_mode: input.auth_mode,
      hmac_playback_secret_configured: input.hmac_playback_secret_configured,
      stream_keys_enabled: streamKeysEnabled,
    },
    config_path: null,
    wasm_filter_paths: [],
  };
}

function hasOwnStatus(error: unknown): boolean {
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === "number" && status >= 400 && status <= 599;
}

function errorStatus(error: unknown): number {
  if ((error as { validation?: unknown }).validation !== undefined) return 400;
  return hasOwnStatus(error) ? (error as { statusCode: number }).statusCode : 500;
}

function describeValidationErrors(errors: ErrorObject[], dataVar: string): string {
  // anyOf branches produce one error per branch; the one that is not about `null` says what was wrong.
  const useful = errors.filter(
    (e) => e.keyword !== "anyOf" && !(e.keyword === "type" && e.params.type === "null"),
  );
  const error = useful[0] ?? errors[0];
  if (error === undefined) return `${dataVar} is invalid`;
  if (error.keyword === "additionalProperties") {
    return `${dataVar}${error.instancePath} has unknown field ${JSON.stringify(error.params.additionalProperty)}`;
  }
  if (error.keyword === "pattern" && error.instancePath === "/broadcast") {
    return `${dataVar}/broadcast is not a valid broadcast name (segments of A-Z a-z 0-9 . _ - separated by /)`;
  }
  return `${dataVar}${error.instancePath} ${error.message ?? "is invalid"}`;
}

function checkOptions(options: AdminPluginOptions): void {
  for (const name of ["authorizeAdmin", "authorizeSubscribe", "stats", "streams", "serverInfo"] as const) {
    if (typeof options?.[name] !== "function") {
      throw new AdminError("ADMIN_INVALID_OPTIONS", `adminPlugin needs the ${name}() option`);
    }
  }
  const limit = options.bodyLimit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new AdminError(
      "ADMIN_INVALID_OPTIONS",
      `adminPlugin bodyLimit must be a positive integer, got ${limit}`,
    );
  }
}
