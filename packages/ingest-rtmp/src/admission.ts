/** Publish admission: what `authorize` receives and what it answers. */

/** A publish request, as `authorize` sees it. */
export interface PublishRequest {
  /** RTMP application (without any query). */
  readonly app: string;
  /** Stream name without its query. */
  readonly stream: string;
  /**
   * The stream name's query (`<stream>?key=...`), plus any query on the app (`live?key=...`)
   * for keys the stream query does not have. Credentials live here, never in the name.
   */
  readonly query: URLSearchParams;
  readonly remoteAddress: string;
  /** The client's `flashVer` (e.g. "FMLE/3.0 (compatible; FMSc/1.0)"). */
  readonly flashVer: string;
  /** The client's `tcUrl`. */
  readonly tcUrl: string;
}

/** The answer of `authorize`. */
export type PublishDecision =
  | {
      readonly allow: true;
      /** Broadcast name to use instead of `<app>/<stream>` (e.g. a stream key mapped to a name). */
      readonly name?: string;
    }
  | {
      readonly allow: false;
      readonly status: "NetStream.Publish.BadName" | "NetStream.Publish.Unauthorized";
      /** Sent to the publisher in the `onStatus` description. */
      readonly description: string;
    };

/** Details of a refused publish, as the server's `reject` event reports it. */
export interface PublishRejection {
  readonly app: string;
  readonly stream: string;
  /** The broadcast name when it was known at the time of the refusal. */
  readonly name?: string;
  readonly remoteAddress: string;
  readonly status: string;
  readonly description: string;
}
