/** Types of index.mjs (the custom resource handler of LambdaSubscriber), for the tests that import it. */
export declare const CREATE_FAILED_PREFIX: string;

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export declare function signRequest(request: {
  method: string;
  url: string;
  body?: string;
  region: string;
  credentials: Credentials;
  now?: Date;
  service?: string;
}): Record<string, string>;

export declare function groupUrl(apiUrl: string, topic: string, group: string): string;

export interface PutGroupRequest {
  apiUrl: string;
  region: string;
  topic: string;
  group: string;
  settings: unknown;
  /** Epoch ms after which no further attempt starts. */
  deadline: number;
  credentials?: Credentials;
  fetchImpl?: typeof fetch;
}

export declare function putGroup(request: PutGroupRequest): Promise<number>;

export interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  RequestId: string;
  StackId: string;
  LogicalResourceId: string;
  ResponseURL: string;
  PhysicalResourceId?: string;
  ResourceProperties: Record<string, string>;
  OldResourceProperties?: Record<string, string>;
}

export interface Outcome {
  status: 'SUCCESS' | 'FAILED';
  reason?: string;
  physicalResourceId: string;
}

export declare function outcomeOf(
  event: CustomResourceEvent,
  options?: { deadline?: number; put?: (request: PutGroupRequest) => Promise<number> },
): Promise<Outcome>;

export declare function handler(event: CustomResourceEvent, context: { getRemainingTimeInMillis(): number }): Promise<void>;
