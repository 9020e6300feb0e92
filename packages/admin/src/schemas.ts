/**
 * JSON schemas of the admin routes: request schemas validate (with unknown fields rejected where
 * silently ignoring them would hide a mistake) and response schemas drive serialization, so a field
 * the server adds by accident never leaks.
 */

import { BROADCAST_NAME_PATTERN, MAX_BROADCAST_NAME_LENGTH } from "./broadcast-name.ts";

/** Longest stream-key label accepted. */
export const MAX_LABEL_LENGTH = 256;

/** Longest stream-key TTL accepted: ten years, in seconds. */
export const MAX_TTL_SECONDS = 315_360_000;

/** Bounds of the client-sample fields, as in the reference. */
export const CLIENT_SAMPLE_LIMITS: {
  readonly broadcastMaxLength: 256;
  readonly transportMaxLength: 32;
  readonly maxLatencyMs: 300_000;
} = { broadcastMaxLength: 256, transportMaxLength: 32, maxLatencyMs: 300_000 };

/** A JSON schema object, as fastify and Ajv take it. */
export type JsonSchema = Record<string, unknown>;

const nullableString = { type: ["string", "null"] } as const;
const nullableInteger = { type: ["integer", "null"] } as const;
const countMap = { type: "object", additionalProperties: { type: "number" } } as const;

/** `{"error": "..."}`, the body of every error response. */
export const errorSchema: JsonSchema = {
  type: "object",
  properties: { error: { type: "string" } },
  required: ["error"],
} as const;

export const sloEntrySchema: JsonSchema = {
  type: "object",
  properties: {
    broadcast: { type: "string" },
    transport: { type: "string" },
    p50_ms: { type: "number" },
    p95_ms: { type: "number" },
    p99_ms: { type: "number" },
    max_ms: { type: "number" },
    sample_count: { type: "integer" },
    total_observed: { type: "integer" },
  },
  required: [
    "broadcast",
    "transport",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "sample_count",
    "total_observed",
  ],
} as const;

export const clientSampleBodySchema: JsonSchema = {
  type: "object",
  properties: {
    broadcast: { type: "string" },
    transport: { type: "string" },
    ingest_ts_ms: { type: "integer", minimum: 0 },
    render_ts_ms: { type: "integer", minimum: 0 },
  },
  required: ["broadcast", "transport", "ingest_ts_ms", "render_ts_ms"],
} as const;

export const statsSchema: JsonSchema = {
  type: "object",
  properties: {
    publishers: { type: "integer" },
    subscribers: { type: "integer" },
    tracks: { type: "integer" },
    bytes_received: { type: "integer" },
    bytes_sent: { type: "integer" },
    uptime_secs: { type: "integer" },
    subscribers_by_protocol: countMap,
  },
  required: [
    "publishers",
    "subscribers",
    "tracks",
    "bytes_received",
    "bytes_sent",
    "uptime_secs",
    "subscribers_by_protocol",
  ],
} as const;

export const streamsSchema: JsonSchema = {
  type: "array",
  items: {
    type: "object",
    properties: {
      name: { type: "string" },
      subscribers: { type: "integer" },
      subscribers_by_protocol: countMap,
      bytes_received: { type: "integer" },
      bytes_sent: { type: "integer" },
      started_at_ms: { type: "integer" },
    },
    required: ["name", "subscribers"],
  },
} as const;

const boundProperties = Object.fromEntries(
  ["admin", "rtmp", "whip", "whep", "hls", "dash", "srt", "rtsp", "moq", "signal"].map((k) => [
    k,
    nullableString,
  ]),
);

export const serverInfoSchema: JsonSchema = {
  type: "object",
  properties: {
    version: { type: "string" },
    build_features: { type: "array", items: { type: "string" } },
    uptime_secs: { type: "integer" },
    bound: { type: "object", properties: boundProperties, required: Object.keys(boundProperties) },
    features: {
      type: "object",
      properties: {
        mesh_enabled: { type: "boolean" },
        cluster_enabled: { type: "boolean" },
        archive_dir: nullableString,
        record_dir: nullableString,
        wasm_filter_chain_length: { type: "integer" },
        auth_mode: { type: "string" },
        hmac_playback_secret_configured: { type: "boolean" },
        stream_keys_enabled: { type: "boolean" },
      },
      required: [
        "mesh_enabled",
        "cluster_enabled",
        "archive_dir",
        "record_dir",
        "wasm_filter_chain_length",
        "auth_mode",
        "hmac_playback_secret_configured",
        "stream_keys_enabled",
      ],
    },
    config_path: nullableString,
    wasm_filter_paths: { type: "array", items: { type: "string" } },
  },
  required: [
    "version",
    "build_features",
    "uptime_secs",
    "bound",
    "features",
    "config_path",
    "wasm_filter_paths",
  ],
} as const;

export const streamKeySchema: JsonSchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    token: { type: "string" },
    label: nullableString,
    broadcast: nullableString,
    created_at: { type: "integer" },
    expires_at: nullableInteger,
  },
  required: ["id", "token", "label", "broadcast", "created_at", "expires_at"],
} as const;

/**
 * Mint and rotate bodies. Unknown fields are rejected: a misspelt `ttl` or the `expires_in_secs` of
 * an old README would otherwise mint a key that never expires. `null` (an empty body) is allowed;
 * the route decides what it means.
 */
export const streamKeySpecBodySchema: JsonSchema = {
  type: ["object", "null"],
  additionalProperties: false,
  properties: {
    label: {
      anyOf: [
        { type: "null" },
        { type: "string", maxLength: MAX_LABEL_LENGTH, pattern: "^[^\\u0000-\\u001f\\u007f]*$" },
      ],
    },
    broadcast: {
      anyOf: [
        { type: "null" },
        {
          type: "string",
          minLength: 1,
          maxLength: MAX_BROADCAST_NAME_LENGTH,
          pattern: BROADCAST_NAME_PATTERN,
        },
      ],
    },
    ttl_seconds: { anyOf: [{ type: "null" }, { type: "integer", minimum: 0, maximum: MAX_TTL_SECONDS }] },
  },
} as const;

export const streamKeyIdParamsSchema: JsonSchema = {
  type: "object",
  properties: { id: { type: "string", minLength: 1, maxLength: 128 } },
  required: ["id"],
} as const;

export const clusterNodesSchema: JsonSchema = {
  type: "array",
  items: {
    type: "object",
    properties: {
      id: { type: "string" },
      generation: { type: "integer" },
      gossip_addr: nullableString,
      capacity: {
        anyOf: [
          { type: "null" },
          {
            type: "object",
            properties: {
              cpu_pct: { type: "number" },
              rss_bytes: { type: "integer" },
              bytes_out_per_sec: { type: "number" },
              subscribers: { type: "integer" },
            },
            required: ["cpu_pct", "rss_bytes", "bytes_out_per_sec"],
          },
        ],
      },
      endpoints: { type: "object", additionalProperties: nullableString },
      version: { type: "string" },
      started_at_ms: { type: "integer" },
      last_seen_ms: { type: "integer" },
      expires_at_ms: { type: "integer" },
    },
    required: ["id", "generation", "gossip_addr", "capacity"],
  },
} as const;

export const clusterBroadcastsSchema: JsonSchema = {
  type: "array",
  items: {
    type: "object",
    properties: {
      name: { type: "string" },
      owner: { type: "string" },
      expires_at_ms: { type: "integer" },
      epoch: { type: "integer" },
      last_media_ms: { type: "integer" },
    },
    required: ["name", "owner", "expires_at_ms"],
  },
} as const;
