import { describeTopic } from '../domain/topics.js';
import { apiRoute } from '../http/route.js';
import { TopicParams } from '../http/schemas.js';
import { topicView } from '../http/views.js';

export const handler = apiRoute({
  params: TopicParams,
  run: async ({ params, stores }) => {
    const { topic, partitionsInfo } = await describeTopic(stores, params.topic);
    return { status: 200, body: { ...topicView(topic), partitionsInfo } };
  },
});
