import BPFTreeYAML

/// A value for one of a program's global variables (`program.globals`), as written; it becomes bytes
/// against the variable's BTF type when the object is opened (`GlobalVariable.encode`).
public indirect enum GlobalValue: Hashable, Sendable, CustomStringConvertible {
    case integer(negative: Bool, magnitude: UInt64)
    case bool(Bool)
    /// Bytes of a `char` (or other one-byte) array, zero-padded.
    case string(String)
    /// The elements of an array, zero-padded.
    case list([GlobalValue])

    public var description: String {
        switch self {
        case .integer(let negative, let magnitude): (negative ? "-" : "") + String(magnitude)
        case .bool(let value): value ? "true" : "false"
        case .string(let text): "\"" + text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined() + "\""
        case .list(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

/// `name: value` of a program's `globals`.
public struct GlobalAssignment: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: GlobalValue
    public var location: SourceLocation

    public init(name: String, value: GlobalValue, location: SourceLocation) {
        (self.name, self.value, self.location) = (name, value, location)
    }

    /// `name=value`: what load groups, fingerprints and cache keys compare.
    public var description: String { "\(name)=\(value)" }
}

/// A variable of an object's `.rodata`, `.data` or `.bss` section, as its BTF describes it.
public struct GlobalVariable: Hashable, Sendable {
    /// What one element is: only integers, booleans and enums can be written from a manifest.
    public enum Element: Hashable, Sendable {
        case integer(signed: Bool)
        case bool
        case enumeration(signed: Bool)
        /// A struct, union, pointer or float: not settable.
        case other
    }

    public var name: String
    /// The section it lives in, e.g. `.rodata`.
    public var section: String
    /// Its size in bytes.
    public var size: Int
    public var element: Element
    /// The size of one element (`size` for a scalar).
    public var elementSize: Int
    /// The element count of an array; nil for a scalar.
    public var count: Int?
    /// The C type as BTF names it, for messages: `const volatile __u64`, `char[16]`.
    public var typeName: String

    public init(name: String, section: String, size: Int, element: Element, elementSize: Int, count: Int?, typeName: String) {
        (self.name, self.section, self.size, self.element) = (name, section, size, element)
        (self.elementSize, self.count, self.typeName) = (elementSize, count, typeName)
    }

    /// `value` as the variable's bytes (little-endian, zero-padded), or why it cannot be.
    public func encode(_ value: GlobalValue) -> Result<[UInt8], GlobalEncodingError> {
        if let count {
            switch value {
            case .string(let text):
                let bytes = Array(text.utf8)
                guard elementSize == 1, element != .other, element != .bool else {
                    return .failure(.init("a string needs an array of one-byte integers; \(name) is \(typeName)"))
                }
                guard bytes.count <= count else {
                    return .failure(.init("\(bytes.count) bytes do not fit \(name) (\(typeName), \(count) bytes)"))
                }
                return .success(bytes + [UInt8](repeating: 0, count: size - bytes.count))
            case .list(let items):
                guard items.count <= count else {
                    return .failure(.init("\(items.count) elements do not fit \(name) (\(typeName), \(count) elements)"))
                }
                var bytes: [UInt8] = []
                for (index, item) in items.enumerated() {
                    switch scalar(item) {
                    case .success(let encoded): bytes += encoded
                    case .failure(let error): return .failure(.init("element \(index): \(error.message)"))
                    }
                }
                return .success(bytes + [UInt8](repeating: 0, count: size - bytes.count))
            default:
                return .failure(.init("\(name) is an array (\(typeName)): give a list\(elementSize == 1 ? " or a string" : "")"))
            }
        }
        return scalar(value)
    }

    private func scalar(_ value: GlobalValue) -> Result<[UInt8], GlobalEncodingError> {
        switch (element, value) {
        case (.other, _):
            return .failure(.init("\(name) is \(typeName), which a manifest cannot set (only integers, booleans, enums and arrays of them)"))
        case (.bool, .bool(let flag)):
            return .success([flag ? 1 : 0] + [UInt8](repeating: 0, count: elementSize - 1))
        case (.bool, _):
            return .failure(.init("\(name) is \(typeName): expected true or false, found \(value)"))
        case (.integer(let signed), .integer(let negative, let magnitude)), (.enumeration(let signed), .integer(let negative, let magnitude)):
            let literal = IntegerLiteral(isNegative: negative, magnitude: magnitude)
            if negative && !signed {
                return .failure(.init("\(name) is \(typeName), which is unsigned: \(value) does not fit"))
            }
            if !negative && signed && elementSize < 8 && magnitude > (UInt64(1) << (elementSize * 8 - 1)) - 1 {
                return .failure(.init("\(value) does not fit \(name) (\(typeName), \(elementSize * 8)-bit signed)"))
            }
            guard let bytes = literal.littleEndian(size: elementSize) else {
                return .failure(.init("\(value) does not fit \(name) (\(typeName), \(elementSize * 8)-bit)"))
            }
            return .success(bytes)
        case (.integer, .bool), (.enumeration, .bool):
            return .failure(.init("\(name) is \(typeName): expected an integer, found \(value) (true and false are for bool variables)"))
        case (.integer, .string(let text)) where Self.isIntegerText(text), (.enumeration, .string(let text)) where Self.isIntegerText(text):
            return .failure(.init("\(text) does not fit \(name) (\(typeName), \(elementSize * 8)-bit)"))
        case (.integer, _), (.enumeration, _):
            return .failure(.init("\(name) is \(typeName): expected an integer, found \(value)"))
        }
    }
}

extension GlobalVariable {
    /// Whether `text` is written as an integer (decimal or 0x hex, signed or not) that no 64-bit literal
    /// holds: it reached here as a string only because it is too large.
    static func isIntegerText(_ text: String) -> Bool {
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            let hex = digits.dropFirst(2)
            return !hex.isEmpty && hex.allSatisfy(\.isHexDigit)
        }
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

/// Why a value does not fit its variable.
public struct GlobalEncodingError: Error, Hashable, Sendable {
    public var message: String
    init(_ message: String) { self.message = message }
}

extension ProgramSpec {
    /// The globals' bytes for the object's variables, or the first assignment that does not fit (its name
    /// and why). A name no variable has is refused with the object's variables listed.
    public func encodeGlobals(_ variables: [GlobalVariable]) -> Result<[(name: String, bytes: [UInt8])], ProgramGlobalError> {
        var byName: [String: GlobalVariable] = [:]
        for variable in variables { byName[variable.name] = variable }
        var encoded: [(name: String, bytes: [UInt8])] = []
        for global in globals {
            guard let variable = byName[global.name] else {
                let names = variables.map(\.name).sorted()
                var message = "\(object) has no global variable '\(global.name)' in .rodata, .data or .bss"
                message += names.isEmpty ? " (it has none)" : "; it has: \(names.joined(separator: ", "))"
                if let suggestion = closest(to: global.name, in: names) { message += "; did you mean '\(suggestion)'?" }
                return .failure(ProgramGlobalError(name: global.name, message: message))
            }
            switch variable.encode(global.value) {
            case .success(let bytes): encoded.append((global.name, bytes))
            case .failure(let error): return .failure(ProgramGlobalError(name: global.name, message: error.message))
            }
        }
        return .success(encoded)
    }
}

/// A program's global that cannot be set: which one, and why.
public struct ProgramGlobalError: Error, Hashable, Sendable {
    public var name: String
    public var message: String
}
