/** Schemas of the change feed and of webhook payloads (thin: URIs, receivers re-fetch). */
import Type, { type Static } from 'typebox';

export const ChangeEventType = Type.Union([
  Type.Literal('asset.created'),
  Type.Literal('asset.updated'),
  Type.Literal('asset.deleted'),
  Type.Literal('rights.changed'),
  Type.Literal('collection.items_added'),
  Type.Literal('collection.items_removed'),
]);
export type ChangeEventType = Static<typeof ChangeEventType>;

export const ChangeEvent = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: 'Position in the feed; strictly increasing.' }),
    id: Type.String({ maxLength: 100, description: 'Event id, stable across deliveries.' }),
    type: ChangeEventType,
    time: Type.String({ format: 'date-time' }),
    subject: Type.String({ maxLength: 2048, description: 'imagine:// URI of what changed.' }),
    version: Type.Optional(Type.String({ maxLength: 100 })),
    items: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }))),
  },
  { additionalProperties: true, $id: 'ChangeEvent' },
);
export type ChangeEvent = Static<typeof ChangeEvent>;

export const ChangesPage = Type.Object(
  {
    events: Type.Array(ChangeEvent),
    next: Type.String({ description: 'Cursor to pass as `since` to continue.' }),
    hasMore: Type.Boolean(),
  },
  { additionalProperties: true, $id: 'ChangesPage' },
);
export type ChangesPage = Static<typeof ChangesPage>;
