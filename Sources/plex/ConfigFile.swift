import Foundation

/// A node configuration file: a small, strict subset of TOML.
///
/// Lines are `key = value` with string (`"…"`), integer, boolean or string-array (`["a", "b"]`) values;
/// `#` starts a comment. Unknown keys and malformed values are errors naming the file, line and key: a
/// typo must not silently fall back to a default. (We parse this subset ourselves: the mirrored TOML
/// package depends on a package that is not available here.)
struct ConfigFile {
    enum Value: Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case strings([String])
    }

    struct Error: Swift.Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Keys a node file may set, and the kind each takes.
    static let schema: [String: String] = [
        "node_id": "string", "listen": "string", "seeds": "strings", "data_dir": "string",
        "cluster_name": "string", "secret_file": "string", "log_level": "string", "cluster_file": "string",
        "idle_timeout_ms": "integer", "max_activations": "integer", "heartbeat_ms": "integer",
        "unreachable_after_ms": "integer", "max_frame_size": "integer", "max_in_flight_per_peer": "integer",
        "drain_timeout_ms": "integer", "idempotency_retention_hours": "integer", "keep_history": "boolean",
        "bootstrap": "boolean", "join_timeout_ms": "integer", "advertise": "string",
        "journal_shards": "integer",
        "journal_unfiled_bytes": "integer", "mailbox_limit": "integer", "max_connections": "integer",
        "handshake_timeout_ms": "integer", "http": "boolean", "http_listen": "string", "http_token_file": "string",
        "http_max_body_bytes": "integer", "http_metrics_open": "boolean", "http2_listen": "string",
        "http_tls_cert_file": "string", "http_tls_key_file": "string",
        "tls_ca_file": "string", "tls_cert_file": "string", "tls_key_file": "string", "caller_secret_file": "string",
        "http_max_connections": "integer",
        "log_format": "string", "otel": "boolean", "otel_endpoint": "string",
    ]

    var values: [String: Value] = [:]
    /// Where each key came from, for relative paths: the directory of the file that set it.
    var directories: [String: String] = [:]

    /// Reads `path`, following `cluster_file` (keys in the node file win).
    static func load(_ path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Error(message: "\(path): cannot read the file")
        }
        let directory = (path as NSString).deletingLastPathComponent
        var file = try parse(String(decoding: data, as: UTF8.self), path: path, directory: directory)
        if case .string(let included)? = file.values["cluster_file"] {
            let includedPath = resolve(included, against: file.directories["cluster_file"]!)
            let base = try load(includedPath)
            for (key, value) in base.values where file.values[key] == nil {
                file.values[key] = value
                file.directories[key] = base.directories[key]
            }
        }
        return file
    }

    static func resolve(_ path: String, against directory: String) -> String {
        path.hasPrefix("/") || directory.isEmpty ? path : directory + "/" + path
    }

    /// A path-valued key, resolved against the directory of the file that set it.
    func path(_ key: String) -> String? {
        guard case .string(let text)? = values[key] else { return nil }
        return Self.resolve(text, against: directories[key] ?? "")
    }

    static func parse(_ text: String, path: String, directory: String) throws -> ConfigFile {
        var file = ConfigFile()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let where_ = "\(path):\(index + 1)"
            guard let equals = line.firstIndex(of: "=") else {
                throw Error(message: "\(where_): expected 'key = value', found '\(line)'")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let rawValue = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard let kind = schema[key] else {
                throw Error(
                    message:
                        "\(where_): unknown field '\(key)' (known: \(schema.keys.sorted().joined(separator: ", ")))")
            }
            let value = try parseValue(rawValue, where: where_, key: key)
            let matches: Bool
            switch (kind, value) {
            case ("string", .string), ("integer", .integer), ("strings", .strings), ("boolean", .boolean):
                matches = true
            default: matches = false
            }
            guard matches else {
                throw Error(
                    message: "\(where_): field '\(key)' must be a \(kind == "strings" ? "list of strings" : kind)")
            }
            file.values[key] = value
            file.directories[key] = directory
        }
        return file
    }

    private static func stripComment(_ line: String) -> String {
        var inString = false
        var result = ""
        for c in line {
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { break }
            result.append(c)
        }
        return result
    }

    private static func parseValue(_ text: String, where: String, key: String) throws -> Value {
        if text.hasPrefix("\"") {
            guard text.count >= 2, text.hasSuffix("\"") else {
                throw Error(message: "\(`where`): field '\(key)': unterminated string")
            }
            return .string(String(text.dropFirst().dropLast()))
        }
        if text == "true" { return .boolean(true) }
        if text == "false" { return .boolean(false) }
        if let n = Int(text.replacingOccurrences(of: "_", with: "")) { return .integer(n) }
        if text.hasPrefix("[") && text.hasSuffix("]") {
            let inner = text.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
            if inner.isEmpty { return .strings([]) }
            var items: [String] = []
            for part in inner.split(separator: ",") {
                let item = part.trimmingCharacters(in: .whitespaces)
                guard item.count >= 2, item.hasPrefix("\""), item.hasSuffix("\"") else {
                    throw Error(message: "\(`where`): field '\(key)': list items must be quoted strings")
                }
                items.append(String(item.dropFirst().dropLast()))
            }
            return .strings(items)
        }
        throw Error(message: "\(`where`): field '\(key)': cannot read value '\(text)'")
    }
}
