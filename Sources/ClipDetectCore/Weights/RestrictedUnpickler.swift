/// A pickle reader that knows only what a PyTorch state dict needs. Any other global or
/// callable is refused when its opcode is read, so nothing a pickle names ever runs.
struct RestrictedUnpickler {
    /// Storage classes a persistent id may name, and the dtype each holds.
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]
    /// Every global the reader accepts; `torch.*Storage` come from `storageTypes`.
    static let callables: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    ]

    final class ListBox { var items: [Value] = []; var depth = 1 }
    final class DictBox { var items: [(key: Value, value: Value)] = []; var depth = 1 }

    struct StorageRef { let dtype: DType; let key: String; let count: Int }
    struct TensorRef { let storage: StorageRef; let offset: Int; let shape: [Int]; let strides: [Int] }

    enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case tuple([Value], depth: Int), list(ListBox), dict(DictBox)
        case global(String), storageType(DType), storage(StorageRef), tensor(TensorRef)
    }

    private let data: UnsafeRawBufferPointer
    private var at = 0
    private var stack: [Value] = []
    private var marks: [Int] = []
    private var memo: [Int: Value] = [:]
    static let maxMemo = 1_000_000
    /// A state dict nests a few levels; freeing a value nested 100,000 deep would overflow the stack.
    static let maxDepth = 64
    static let maxStack = 1_000_000
    /// data.pkl of a ViT-L/14 checkpoint is about 100 KB; tensors live outside it.
    static let maxBytes = 64 << 20

    static func depth(_ value: Value) -> Int {
        switch value {
        case .tuple(_, let depth): depth
        case .list(let box): box.depth
        case .dict(let box): box.depth
        default: 0
        }
    }

    static func nest(_ depth: Int) throws -> Int {
        guard depth <= maxDepth else { throw WeightsError.malformed("pickle nests deeper than \(maxDepth) levels") }
        return depth
    }

    static func tuple(_ items: [Value]) throws -> Value {
        .tuple(items, depth: try nest(1 + (items.map(depth).max() ?? 0)))
    }

    init(_ data: UnsafeRawBufferPointer) { self.data = data }

    static func load(_ data: UnsafeRawBufferPointer) throws -> Value {
        guard data.count <= maxBytes else { throw WeightsError.malformed("data.pkl of \(data.count) bytes is above \(maxBytes)") }
        var reader = RestrictedUnpickler(data)
        return try reader.run()
    }

    private mutating func byte() throws -> UInt8 {
        guard at < data.count else { throw WeightsError.malformed("pickle ends before its STOP opcode") }
        defer { at += 1 }
        return data[at]
    }

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= data.count - at else { throw WeightsError.malformed("pickle field of \(count) bytes runs past the end") }
        defer { at += count }
        return UnsafeRawBufferPointer(rebasing: data[at..<(at + count)])
    }

    private mutating func uint(_ width: Int) throws -> Int {
        let raw = try take(width)
        var value: UInt64 = 0
        for index in (0..<width).reversed() { value = value << 8 | UInt64(raw[index]) }
        guard value <= UInt64(Int.max) else { throw WeightsError.malformed("pickle length out of range") }
        return Int(value)
    }

    private mutating func line() throws -> String {
        var bytes: [UInt8] = []
        while true {
            let next = try byte()
            if next == UInt8(ascii: "\n") { break }
            bytes.append(next)
            guard bytes.count < 256 else { throw WeightsError.malformed("pickle global name too long") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func pop() throws -> Value {
        guard let top = stack.popLast() else { throw WeightsError.malformed("pickle stack underflow") }
        if let mark = marks.last, stack.count < mark { throw WeightsError.malformed("pickle pops past a mark") }
        return top
    }

    private mutating func popToMark() throws -> [Value] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw WeightsError.malformed("pickle MARK missing") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private mutating func resolveGlobal(module: String, name: String) throws -> Value {
        let qualified = "\(module).\(name)"
        if module == "torch", let dtype = Self.storageTypes[name] { return .storageType(dtype) }
        guard Self.callables.contains(qualified) else {
            throw WeightsError.refused("pickle names \(qualified), which a state dict never needs; nothing was executed")
        }
        return .global(qualified)
    }

    private mutating func memoize(_ index: Int, _ value: Value) throws {
        guard index >= 0, index < Self.maxMemo else { throw WeightsError.malformed("pickle memo index out of range") }
        memo[index] = value
    }

    private mutating func run() throws -> Value {
        while true {
            guard stack.count <= Self.maxStack else { throw WeightsError.malformed("pickle stack above \(Self.maxStack) values") }
            let op = try byte()
            switch op {
            case 0x80: _ = try byte() // PROTO
            case 0x95: _ = try take(8) // FRAME
            case UInt8(ascii: "."): return try pop() // STOP
            case UInt8(ascii: "("): marks.append(stack.count)
            case UInt8(ascii: "N"): stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case UInt8(ascii: "K"): stack.append(.int(try uint(1)))
            case UInt8(ascii: "M"): stack.append(.int(try uint(2)))
            case UInt8(ascii: "J"): stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))
            case 0x8a: // LONG1: little-endian two's complement of up to 8 bytes
                let count = try uint(1)
                guard count <= 8 else { throw WeightsError.malformed("pickle integer too large") }
                let raw = try take(count)
                var value: UInt64 = 0
                for index in (0..<count).reversed() { value = value << 8 | UInt64(raw[index]) }
                if count > 0, count < 8, raw[count - 1] & 0x80 != 0 { value |= ~0 << UInt64(count * 8) }
                stack.append(.int(Int(Int64(bitPattern: value))))
            case UInt8(ascii: "G"):
                let raw = try take(8)
                var bits: UInt64 = 0
                for index in 0..<8 { bits = bits << 8 | UInt64(raw[index]) }
                stack.append(.float(Double(bitPattern: bits)))
            case UInt8(ascii: "X"): stack.append(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))
            case 0x8c: stack.append(.string(String(decoding: try take(try uint(1)), as: UTF8.self)))
            case 0x8d: stack.append(.string(String(decoding: try take(try uint(8)), as: UTF8.self)))
            case UInt8(ascii: "T"): stack.append(.bytes(Array(try take(try uint(4)))))
            case UInt8(ascii: "U"): stack.append(.bytes(Array(try take(try uint(1)))))
            case UInt8(ascii: "B"): stack.append(.bytes(Array(try take(try uint(4)))))
            case UInt8(ascii: "C"): stack.append(.bytes(Array(try take(try uint(1)))))
            case 0x8e: stack.append(.bytes(Array(try take(try uint(8)))))
            case UInt8(ascii: ")"): stack.append(try Self.tuple([]))
            case UInt8(ascii: "]"): stack.append(.list(ListBox()))
            case UInt8(ascii: "}"): stack.append(.dict(DictBox()))
            case UInt8(ascii: "t"): stack.append(try Self.tuple(try popToMark()))
            case 0x85: stack.append(try Self.tuple([try pop()]))
            case 0x86: let b = try pop(); let a = try pop(); stack.append(try Self.tuple([a, b]))
            case 0x87: let c = try pop(); let b = try pop(); let a = try pop(); stack.append(try Self.tuple([a, b, c]))
            case UInt8(ascii: "l"):
                let items = try popToMark(), list = ListBox()
                list.items = items
                list.depth = try Self.nest(1 + (items.map(Self.depth).max() ?? 0))
                stack.append(.list(list))
            case UInt8(ascii: "q"): try memoize(try uint(1), try top())
            case UInt8(ascii: "r"): try memoize(try uint(4), try top())
            case 0x94: try memoize(memo.count, try top())
            case UInt8(ascii: "h"), UInt8(ascii: "j"):
                let index = try uint(op == UInt8(ascii: "h") ? 1 : 4)
                guard let value = memo[index] else { throw WeightsError.malformed("pickle refers to memo \(index), never stored") }
                stack.append(value)
            case UInt8(ascii: "0"): _ = try pop()
            case UInt8(ascii: "1"): _ = try popToMark()
            case UInt8(ascii: "2"): stack.append(try top())
            case UInt8(ascii: "c"):
                let module = try line()
                let name = try line()
                stack.append(try resolveGlobal(module: module, name: name))
            case 0x93:
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw WeightsError.malformed("pickle STACK_GLOBAL without two strings")
                }
                stack.append(try resolveGlobal(module: module, name: name))
            case UInt8(ascii: "a"):
                let item = try pop()
                guard case .list(let list) = try top() else { throw WeightsError.malformed("pickle APPEND to a non-list") }
                list.depth = max(list.depth, try Self.nest(1 + Self.depth(item)))
                list.items.append(item)
            case UInt8(ascii: "e"):
                let items = try popToMark()
                guard case .list(let list) = try top() else { throw WeightsError.malformed("pickle APPENDS to a non-list") }
                list.depth = max(list.depth, try Self.nest(1 + (items.map(Self.depth).max() ?? 0)))
                list.items += items
            case UInt8(ascii: "s"):
                let value = try pop()
                let key = try pop()
                guard case .dict(let dict) = try top() else { throw WeightsError.malformed("pickle SETITEM on a non-dict") }
                dict.depth = max(dict.depth, try Self.nest(1 + max(Self.depth(key), Self.depth(value))))
                dict.items.append((key, value))
            case UInt8(ascii: "u"):
                let items = try popToMark()
                guard items.count % 2 == 0, case .dict(let dict) = try top() else { throw WeightsError.malformed("pickle SETITEMS malformed") }
                dict.depth = max(dict.depth, try Self.nest(1 + (items.map(Self.depth).max() ?? 0)))
                for pair in stride(from: 0, to: items.count, by: 2) { dict.items.append((items[pair], items[pair + 1])) }
            case UInt8(ascii: "b"): // BUILD: only the attribute state of a dict (a state dict's _metadata), which is ignored
                _ = try pop()
                guard case .dict = try top() else { throw WeightsError.refused("pickle BUILD on an object other than a dict") }
            case UInt8(ascii: "Q"): stack.append(try persistentLoad(try pop()))
            case UInt8(ascii: "R"):
                let arguments = try pop()
                let callable = try pop()
                stack.append(try reduce(callable, arguments))
            default:
                throw WeightsError.refused(String(format: "pickle opcode 0x%02x is not allowed in a state dict; nothing was executed", op))
            }
        }
    }

    private func top() throws -> Value {
        guard let last = stack.last else { throw WeightsError.malformed("pickle stack underflow") }
        return last
    }

    /// `('storage', torch.FloatStorage, key, location, numel)` as PyTorch's zip format writes it.
    private func persistentLoad(_ id: Value) throws -> Value {
        guard case .tuple(let parts, _) = id, parts.count == 5, case .string("storage") = parts[0],
              case .storageType(let dtype) = parts[1], case .string(let key) = parts[2], case .int(let count) = parts[4], count >= 0
        else { throw WeightsError.refused("pickle persistent id is not a PyTorch storage reference") }
        return .storage(StorageRef(dtype: dtype, key: key, count: count))
    }

    private func reduce(_ callable: Value, _ arguments: Value) throws -> Value {
        guard case .global(let name) = callable, case .tuple(let args, _) = arguments else {
            throw WeightsError.refused("pickle calls something other than an allowed global")
        }
        switch name {
        case "collections.OrderedDict":
            guard args.isEmpty else { throw WeightsError.refused("OrderedDict called with arguments") }
            return .dict(DictBox())
        case "torch._utils._rebuild_tensor_v2":
            guard args.count >= 4, case .storage(let storage) = args[0], case .int(let offset) = args[1],
                  case .tuple(let sizes, _) = args[2], case .tuple(let strides, _) = args[3]
            else { throw WeightsError.malformed("_rebuild_tensor_v2 with unexpected arguments") }
            let shape = try sizes.map(Self.nonNegative)
            let steps = try strides.map(Self.nonNegative)
            guard offset >= 0, shape.count == steps.count else { throw WeightsError.malformed("tensor size and stride disagree") }
            return .tensor(TensorRef(storage: storage, offset: offset, shape: shape, strides: steps))
        case "torch._utils._rebuild_parameter":
            guard let tensor = args.first, case .tensor = tensor else { throw WeightsError.malformed("_rebuild_parameter without a tensor") }
            return tensor
        default:
            throw WeightsError.refused("pickle calls \(name)")
        }
    }

    private static func nonNegative(_ value: Value) throws -> Int {
        guard case .int(let number) = value, number >= 0 else { throw WeightsError.malformed("tensor size or stride is not a non-negative integer") }
        return number
    }
}
