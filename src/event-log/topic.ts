// Topic names: non-empty ASCII letters, digits, '.', '_' and '-'. They double as file names in the
// file backend, which is why nothing else (no '/', no spaces) is allowed.

const VALID = /^[A-Za-z0-9._-]+$/;
/** File names are limited to 255 bytes; this leaves room for the file backend's suffixes. */
export const MAX_TOPIC_LENGTH = 200;

export class Topic {
  readonly name: string;

  constructor(name: string) {
    if (typeof name !== 'string') throw new TypeError(`ringlog: topic must be a string, got ${typeof name}`);
    if (name.length === 0) throw new RangeError('ringlog: topic must not be empty');
    if (name.length > MAX_TOPIC_LENGTH) throw new RangeError(`ringlog: topic is ${name.length} characters long; the limit is ${MAX_TOPIC_LENGTH}`);
    if (!VALID.test(name)) {
      const bad = [...name].find((c) => !VALID.test(c))!;
      throw new RangeError(`ringlog: invalid topic ${JSON.stringify(name)}: character ${JSON.stringify(bad)} is not allowed (ASCII letters, digits, '.', '_' and '-' only; see sanitizeTopicComponent)`);
    }
    if (name === '.' || name === '..') throw new RangeError(`ringlog: invalid topic ${JSON.stringify(name)}`);
    this.name = name;
  }

  toString(): string {
    return this.name;
  }

  toJSON(): string {
    return this.name;
  }
}

/** Maps every character outside [A-Za-z0-9._-] to '_' (per UTF-16 code point), so any id can be part of a topic. */
export function sanitizeTopicComponent(component: string): string {
  if (typeof component !== 'string') throw new TypeError(`ringlog: sanitizeTopicComponent expects a string, got ${typeof component}`);
  let out = '';
  for (const c of component) out += VALID.test(c) ? c : '_';
  return out;
}

/** Whether `name` is a valid topic name: what a listing accepts from a directory or a key space. */
export function isTopicName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_TOPIC_LENGTH && VALID.test(name) && name !== '.' && name !== '..';
}

export function topicName(topic: Topic | string): string {
  return topic instanceof Topic ? topic.name : new Topic(topic).name;
}
