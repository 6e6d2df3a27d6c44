import { listTopics } from '../domain/topics.js';
import { apiRoute } from '../http/route.js';
import { topicView } from '../http/views.js';

export const handler = apiRoute({
  run: async ({ stores }) => ({ status: 200, body: { topics: (await listTopics(stores)).map(topicView) } }),
});
