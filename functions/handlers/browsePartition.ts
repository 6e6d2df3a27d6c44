import { browsePartition } from '../domain/log/browse.js';
import { apiRoute } from '../http/route.js';
import { BrowseQuery, PartitionParams } from '../http/schemas.js';
import { messageView } from '../http/views.js';

export const handler = apiRoute({
  params: PartitionParams,
  query: BrowseQuery,
  run: async ({ params, query, stores }) => {
    const page = await browsePartition(stores, params.topic, params.partition, query.from, query.limit);
    return { status: 200, body: { messages: page.messages.map(messageView), next: page.next } };
  },
});
