// What a refused push or join rejects with: the error reply's response, as an Error.
export class ReplyError extends Error {
  constructor(response) {
    const error = response && typeof response === "object" ? response : {};
    super(error.detail || error.code || "error");
    this.name = "ReplyError";
    this.code = error.code || "error";  // "timeout": no reply in time; "disconnected": the connection was lost first
    this.detail = error.detail || "";
    this.response = error;
  }
}

export const timeoutError = () => new ReplyError({code: "timeout", detail: "timeout"});
export const disconnectedError = () => new ReplyError({code: "disconnected", detail: "the connection was lost"});
