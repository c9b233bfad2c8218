/** A user name and a password that does not print: not in `util.inspect`, JSON, or string conversion. */
export class Credentials {
  readonly user: string;
  readonly #password: string;

  constructor(user: string, password: string) {
    this.user = user;
    this.#password = password;
  }

  /** The password, for the scheme that computes a response from it. Never log what this returns. */
  reveal(): string {
    return this.#password;
  }

  /** `user:pass` from curl's `--proxy-user` form: the first colon separates, later ones belong to the password. */
  static parse(text: string): Credentials {
    const colon = text.indexOf(':');
    return colon < 0
      ? new Credentials(text, '')
      : new Credentials(text.slice(0, colon), text.slice(colon + 1));
  }

  /** The user with the password masked (`user:***`), so JSON output never carries it. */
  toJSON(): string {
    return `${this.user}:***`;
  }

  /** The user with the password masked (`user:***`), so string interpolation never shows it. */
  toString(): string {
    return `${this.user}:***`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Credentials(${this.user}, ***)`;
  }
}
