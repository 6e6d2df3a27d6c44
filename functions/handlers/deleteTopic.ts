import { deleteTopic } from '../domain/topics.js';
import { apiRoute } from '../http/route.js';
import { TopicParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: TopicParams,
  run: async ({ params, stores }) => {
    await deleteTopic(stores, params.topic);
    return { status: 204 };
  },
});
