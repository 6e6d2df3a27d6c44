/**
 * The subscriber's own Lambda function: Sluice's push worker invokes it with a batch of up to
 * `batchSize` messages of the group and retries the ones it reports as failed (SQS's partial batch
 * contract); a thrown error fails the whole batch. Each message is delivered at least once, so the
 * processing should tolerate a repeat (the message `id` is stable across deliveries).
 */
export interface SluiceMessage {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
  /** JSON body (or `bodyBase64` for binary bodies); after the group's transform, if it has one. */
  readonly body?: unknown;
  readonly bodyBase64?: string;
  readonly key: string | null;
  readonly tags?: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly producedAt: string;
  readonly deliveryCount: number;
}

export interface SluiceBatch {
  readonly topic: string;
  readonly group: string;
  readonly messages: readonly SluiceMessage[];
}

export interface BatchResponse {
  readonly batchItemFailures: { readonly itemIdentifier: string }[];
}

export async function handler(event: SluiceBatch): Promise<BatchResponse> {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const message of event.messages) {
    try {
      const order = message.body as { total?: unknown };
      if (typeof order?.total !== 'number') throw new Error('no total');
      console.log(JSON.stringify({ topic: event.topic, id: message.id, partition: message.partition, offset: message.offset, total: order.total }));
    } catch (error) {
      console.log(`message ${message.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      batchItemFailures.push({ itemIdentifier: message.id });
    }
  }
  return { batchItemFailures };
}
