import { createTopic } from '../domain/topics.js';
import { apiRoute } from '../http/route.js';
import { PutTopicBody, TopicParams } from '../http/schemas.js';
import { topicView } from '../http/views.js';

export const handler = apiRoute({
  params: TopicParams,
  body: PutTopicBody,
  run: async ({ params, body, stores }) => {
    const { created, topic } = await createTopic(stores, params.topic, body);
    return { status: created ? 201 : 200, body: topicView(topic) };
  },
});
