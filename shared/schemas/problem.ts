import Type, { type Static } from 'typebox';

/** RFC 9457 problem document, with this protocol's stable `code`. */
export const ProblemDocument = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer({ minimum: 100, maximum: 599 }),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    code: Type.String({ description: 'Stable error code from docs/errors.md.' }),
  },
  { additionalProperties: true, $id: 'ProblemDocument' },
);
export type ProblemDocument = Static<typeof ProblemDocument>;
