/**
 * Auth for the LVQR server: who may publish, watch and administer.
 *
 * - Providers answer publish, subscribe, admin and MoQ-session checks: {@link NoopAuth} (nothing
 *   configured), {@link StaticTokenAuth} (`--admin-token`, `--publish-key`, `--subscribe-token`),
 *   {@link JwtAuth} (HS256, scopes subscribe < publish < admin, optional `broadcast` binding), and
 *   {@link StreamKeyAuth} layering runtime stream keys over either. {@link createAuthProvider}
 *   builds the stack from the flags.
 * - {@link StreamKeyStore}: `lvqr_sk_…` keys persisted atomically under the data directory.
 * - The publish naming rule ({@link splitRtmpStreamName}): credentials never end up in a broadcast
 *   name.
 * - Signed URLs ({@link signLiveUrl}, {@link signPlaybackUrl}, the verifiers) and the HLS/DASH
 *   {@link LivePlaybackGate}; MoQ session admission ({@link authorizeMoqSession}).
 *
 * Secrets are compared in constant time and never logged.
 */

export { constantTimeEqual } from "./constant-time.ts";
export { type AuthConfig, adminAuthorizers, createAuthProvider } from "./create-auth.ts";
export { AuthError, type AuthErrorCode, isAuthError } from "./errors.ts";
export {
  JwtAuth,
  type JwtAuthOptions,
  type JwtScope,
  type JwtVerification,
  type VerifiedJwt,
} from "./jwt-provider.ts";
export { type AuthLogger, silentAuthLogger } from "./logger.ts";
export {
  authorizeMoqSession,
  isValidSessionPath,
  type MoqSessionDecision,
  moqSessionCredentials,
} from "./moq-session.ts";
export { NoopAuth } from "./noop-provider.ts";
export {
  LivePlaybackGate,
  type LivePlaybackGateOptions,
  type PlaybackDecision,
  type PlaybackRequest,
} from "./playback-gate.ts";
export {
  type AdminRequest,
  type AuthDecision,
  type AuthMode,
  type AuthProvider,
  MAX_CREDENTIAL_LENGTH,
  type PublishDecision,
  type PublishRequest,
  type SessionGrantRequest,
  type SessionGrants,
  type SubscribeRequest,
} from "./provider.ts";
export { type RtmpStreamName, splitRtmpStreamName } from "./publish-target.ts";
export {
  LiveScheme,
  type SignedUrlCheck,
  signLiveUrl,
  signPlaybackUrl,
  verifyLiveSignature,
  verifyPlaybackSignature,
} from "./signed-url.ts";
export { type StaticAuthOptions, StaticTokenAuth } from "./static-provider.ts";
export { StreamKeyAuth } from "./stream-key-auth.ts";
export {
  STREAM_KEY_FILE_NAME,
  STREAM_KEY_TOKEN_PREFIX,
  type StreamKeyLookup,
  StreamKeyStore,
  type StreamKeyStoreOptions,
} from "./stream-key-store.ts";
