public import PlexCore

/// Why a workflow operation failed, with a code to branch on and a message for people.
public struct WorkflowError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable, Codable {
        /// The code asked for another step than the history recorded at that position (it changed in a way
        /// that is not replay-safe): the instance fails, naming the position, the expected and the actual step.
        case nonDeterminism
        /// No workflow of this type is registered on the node that hosts the instance.
        case unknownWorkflowType
        /// No activity of this name is registered on the node that runs it.
        case unknownActivity
        /// An instance with this id exists and runs another workflow type.
        case typeMismatch
        /// No instance has this id.
        case notFound
        /// The instance was cancelled (its compensation ran).
        case cancelled
        /// The instance was terminated.
        case terminated
        /// An activity failed for good (its retry policy gave up); ``WorkflowError/failure`` says how.
        case activityFailed
        /// The instance failed; ``WorkflowError/failure`` holds what it threw.
        case failed
        /// A wait ran out of time (a ``WorkflowHandle/result(timeout:)`` call or an activity's timeout).
        case timedOut
        /// A value that makes no sense (a retry policy, an input that does not decode).
        case invalidArgument
        /// An error thrown as ``WorkflowError/nonRetryable(_:)``: no retry policy retries it.
        case nonRetryable
        /// A child workflow failed, was cancelled or was terminated; ``WorkflowError/failure`` says how.
        case childFailed
        /// The instance's code has registered no query handler of this name
        /// (``WorkflowContext/onQuery(_:_:)``), or it is not running.
        case unknownQuery
    }

    /// What went wrong.
    public var code: Code
    /// A message for people.
    public var message: String
    /// The underlying failure, for ``Code/activityFailed`` and ``Code/failed``.
    public var failure: EffectLog.Failure?

    /// Creates an error.
    public init(_ code: Code, _ message: String, failure: EffectLog.Failure? = nil) {
        self.code = code
        self.message = message
        self.failure = failure
    }

    /// An error an activity throws to fail at once, whatever its retry policy says.
    public static func nonRetryable(_ message: String) -> WorkflowError { WorkflowError(.nonRetryable, message) }

    /// The type name a journaled non-retryable error carries.
    static let nonRetryableTypeName = "WorkflowError.nonRetryable"

    /// How the error crosses the wire: an ``PlexCore/ActorFailure`` whose code is `workflow.<code>`.
    var actorFailure: ActorFailure { ActorFailure(code: "workflow.\(code.rawValue)", message: message) }

    /// The error an instance threw, from the ``PlexCore/CallError`` its caller received; `nil` for any other.
    init?(remote error: CallError) {
        guard let remote = error.remoteCode, remote.hasPrefix("workflow."),
            let code = Code(rawValue: String(remote.dropFirst("workflow.".count)))
        else { return nil }
        self.init(code, error.message)
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension EffectLog.Failure {
    /// The journaled form of an error an activity attempt threw (a ``WorkflowError/nonRetryable(_:)`` keeps
    /// its kind, so no policy retries it after a restart either).
    static func activity(_ error: any Error) -> EffectLog.Failure {
        var failure = EffectLog.Failure(error)
        if let error = error as? WorkflowError {
            failure.typeName = error.code == .nonRetryable ? WorkflowError.nonRetryableTypeName : "WorkflowError"
            failure.message = error.message
            failure.code = error.code.rawValue
        }
        return failure
    }
}
