import { produce } from '../domain/produce.js';
import { apiRoute } from '../http/route.js';
import { ProduceBody, TopicParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: TopicParams,
  body: ProduceBody,
  run: async ({ params, body, stores, deadline }) => ({
    status: 200,
    body: { results: await produce(stores, params.topic, body.messages, deadline, body.producer) },
  }),
});
