internal import FoundationEssentials
public import HTTPTypes
internal import Hummingbird
internal import NIOCore
public import PlexCore
internal import PlexWorkflow

/// A failed request as the gateway answers it: an HTTP status and a JSON body
/// `{"error":{"code":…,"message":…}}` (with `actorCode` when an actor's handler chose one).
public struct GatewayError: Error, Sendable, Hashable {
    public var status: HTTPResponse.Status
    /// The typed code: a ``PlexCore/CallError`` or `WorkflowError` code, or the gateway's own
    /// (`badRequest`, `unauthorized`, `notFound`, `methodNotAllowed`, `payloadTooLarge`).
    public var code: String
    public var message: String
    /// The code an actor's own error chose (``PlexCore/CallError/remoteCode``).
    public var actorCode: String?
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    public var retryAfter: Int?

    public init(
        _ status: HTTPResponse.Status, code: String, _ message: String, actorCode: String? = nil,
        retryAfter: Int? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.actorCode = actorCode
        self.retryAfter = retryAfter
    }

    /// The HTTP answer to a failed call.
    public init(_ error: CallError) {
        let code = error.code.description
        switch error.code {
        case .unknownActorType: self.init(.notFound, code: code, error.message)
        case .invalidRequest: self.init(.badRequest, code: code, error.message)
        case .permissionDenied: self.init(.forbidden, code: code, error.message)
        case .nodeUnavailable, .shuttingDown, .storageFailure, .cancelled:
            self.init(.serviceUnavailable, code: code, error.message, retryAfter: 1)
        case .overloaded: self.init(.tooManyRequests, code: code, error.message, retryAfter: 1)
        case .timeout: self.init(.gatewayTimeout, code: code, error.message)
        default: self.init(.internalServerError, code: code, error.message, actorCode: error.remoteCode)
        }
    }

    /// The HTTP answer to a failed workflow operation.
    init(_ error: WorkflowError) {
        let code = error.code.rawValue
        switch error.code {
        case .notFound, .unknownWorkflowType, .unknownQuery: self.init(.notFound, code: code, error.message)
        case .invalidArgument: self.init(.badRequest, code: code, error.message)
        case .typeMismatch: self.init(.conflict, code: code, error.message)
        case .timedOut: self.init(.gatewayTimeout, code: code, error.message)
        default: self.init(.internalServerError, code: code, error.message)
        }
    }

    /// Any error a route's work threw, as an answer.
    static func from(_ error: any Error) -> GatewayError {
        switch error {
        case let error as GatewayError: return error
        case let error as CallError: return GatewayError(error)
        case let error as WorkflowError: return GatewayError(error)
        case is NIOTooManyBytesError:
            return GatewayError(
                .contentTooLarge, code: "payloadTooLarge", "the request body is over the gateway's limit")
        case let error as HTTPError:
            return GatewayError(error.status, code: "http", error.body ?? error.status.reasonPhrase)
        default: return GatewayError(.internalServerError, code: "internal", "\(error)")
        }
    }

    /// The error's JSON body.
    var body: [UInt8] {
        struct Body: Encodable {
            struct Inner: Encodable {
                var code: String
                var message: String
                var actorCode: String?
            }
            var error: Inner
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data =
            (try? encoder.encode(Body(error: .init(code: code, message: message, actorCode: actorCode)))) ?? Data()
        return Array(data)
    }

    /// The error response's header fields: its content type, and `Retry-After` when a retry may succeed.
    var headers: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        return headers
    }

    /// The error as an HTTP response.
    var response: Response {
        Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
