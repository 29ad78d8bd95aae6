// Parsers for option values: a bad value becomes commander's InvalidArgumentError, which the CLI
// reports in one line with exit code 2.
import { InvalidArgumentError } from 'commander';

export function intOption(min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`'${value}' is not an integer.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${n} is out of range (${min}..${max === Number.MAX_SAFE_INTEGER ? 'inf' : max}).`);
    return n;
  };
}

export function floatOption(min = -Infinity, max = Infinity, { exclusiveMin = false, exclusiveMax = false } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`'${value}' is not a number.`);
    if (n < min || n > max || (exclusiveMin && n === min) || (exclusiveMax && n === max)) {
      throw new InvalidArgumentError(`${n} is out of range (${exclusiveMin ? '>' : '>='} ${min}${max < Infinity ? `, ${exclusiveMax ? '<' : '<='} ${max}` : ''}).`);
    }
    return n;
  };
}

export function choiceOption<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`'${value}' is not one of ${choices.join(', ')}.`);
    return value as T;
  };
}

/** "a=1,b=2" -> {a: 1, b: 2} with numeric values; keys checked against `keys`. */
export function keyValueNumbers(keys: readonly string[]) {
  return (value: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const part of value.split(',')) {
      const m = /^\s*([A-Za-z][\w]*)\s*=\s*([^=]+)$/.exec(part);
      if (!m) throw new InvalidArgumentError(`'${part}' is not key=value.`);
      if (!keys.includes(m[1])) throw new InvalidArgumentError(`unknown key '${m[1]}' (known: ${keys.join(', ')}).`);
      const n = Number(m[2]);
      if (!Number.isFinite(n)) throw new InvalidArgumentError(`${m[1]}: '${m[2]}' is not a number.`);
      out[m[1]] = n;
    }
    return out;
  };
}
