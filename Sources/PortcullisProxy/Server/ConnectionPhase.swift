/// Where a client connection is. The exchange in flight, if any, is its `ClientExchange`.
enum ConnectionPhase {
    /// No request: waiting for the first byte of a head (`idle_timeout`, or
    /// `client_header_timeout` from the accept for the first).
    case idle
    /// Bytes of a head have come, not the whole head (`client_header_timeout`: 408).
    case readingHead
    /// A request and its response are in flight; or both are done and the connection closes
    /// once the response is written.
    case exchange
    /// The last bytes are written or the connection is cut: nothing more is read.
    case closing
    case closed
}
