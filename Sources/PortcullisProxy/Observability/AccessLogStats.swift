/// What the access-log writer reports to the metrics.
public protocol AccessLogStats: Sendable {
    /// Lines handed to the writer and not yet written.
    var queuedLines: Int { get }
    var writtenLines: Int { get }
    /// Lines dropped because the writer fell too far behind (each drop is also marked in the
    /// log itself and in the diagnostic log).
    var droppedLines: Int { get }
}
