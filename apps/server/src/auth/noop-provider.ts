/** The provider used when no auth is configured: everything is allowed. */

import type {
  AdminRequest,
  AuthDecision,
  AuthProvider,
  PublishDecision,
  PublishRequest,
  SessionGrantRequest,
  SessionGrants,
  SubscribeRequest,
} from "./provider.ts";
import { allowPublish, publishTargetOf } from "./publish-target.ts";

/** Allows every check. Publishers get the name they ask for (`<app>/<stream>` on RTMP). */
export class NoopAuth implements AuthProvider {
  readonly mode = "noop" as const;

  async checkPublish(request: PublishRequest): Promise<PublishDecision> {
    const target = publishTargetOf(request);
    return allowPublish(target.requested ?? target.fallback, { subject: "anonymous" });
  }

  async checkSubscribe(_request: SubscribeRequest): Promise<AuthDecision> {
    return { allow: true, subject: "anonymous" };
  }

  async checkAdmin(_request: AdminRequest): Promise<AuthDecision> {
    return { allow: true, subject: "anonymous" };
  }

  async sessionGrants(_request: SessionGrantRequest): Promise<SessionGrants> {
    return { allow: true, read: [""], publish: [""], subject: "anonymous" };
  }
}
