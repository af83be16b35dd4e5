/** The median of a list of numbers (the upper one of an even count); 0 for none. */
export const median = (xs) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** Append `value` to `list`, dropping the oldest so that at most `limit` stay (a recent window for `median`). */
export const keepRecent = (list, value, limit) => {
  list.push(value);
  if (list.length > limit) list.shift();
};
