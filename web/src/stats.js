/** The median of a list of numbers (the upper one of an even count); 0 for none. */
export const median = (xs) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
