/// How a response body is framed on the way to the client.
enum ResponseFraming {
    /// `Content-Length` passed through, or no body at all.
    case asReceived
    /// Re-chunked: an HTTP/1.1 client, and the upstream sent chunked or EOF-framed, or the
    /// gateway compresses.
    case chunked
    /// An HTTP/1.0 client and no length: the body ends with the connection.
    case untilClose

    /// `hasBody`: the status allows one and the request was not `HEAD`; `contentLength`: the
    /// upstream's; `compressed`: the gateway re-encodes the body (so its length changes).
    init(hasBody: Bool, contentLength: Int?, compressed: Bool, http10: Bool) {
        if hasBody && (contentLength == nil || compressed) {
            self = http10 ? .untilClose : .chunked
        } else {
            self = .asReceived
        }
    }
}
