// The runtime reports through this interface; the CLI decides where it goes
// (--log FILE, --log-format text|json, --debug).
export interface Logger {
  debug(msg: string): void;
  warn(msg: string): void;
}

export const silentLogger: Logger = { debug() {}, warn() {} };
