import NIOCore

/// Where an element sits in a `DeadlineHeap`; kept by the heap, -1 while it has no deadline.
struct DeadlineHeapSlot {
    fileprivate(set) var index = -1
}

/// An element of a `DeadlineHeap`: it carries its own slot, so that moving or removing its
/// deadline takes no search.
protocol DeadlineHeapElement: AnyObject {
    var deadlineSlot: DeadlineHeapSlot { get set }
}

/// One deadline per element, earliest first (a binary min-heap). A loop keeps its connections'
/// deadlines here behind one scheduled task (`LoopContext.setDeadline`), instead of a task,
/// a promise and a closure per connection: an idle connection's timer is 16 bytes of the
/// heap and its slot.
struct DeadlineHeap<Element: DeadlineHeapElement> {
    private var entries: [(deadline: NIODeadline, element: Element)] = []

    var count: Int { self.entries.count }

    /// The earliest deadline; nil when the heap is empty.
    var earliest: NIODeadline? { self.entries.first?.deadline }

    func deadline(of element: Element) -> NIODeadline? {
        let index = element.deadlineSlot.index
        return index >= 0 ? self.entries[index].deadline : nil
    }

    /// Sets `element`'s deadline, replacing the one it had.
    mutating func set(_ deadline: NIODeadline, for element: Element) {
        let index = element.deadlineSlot.index
        if index < 0 {
            self.entries.append((deadline, element))
            element.deadlineSlot.index = self.entries.count - 1
            self.siftUp(from: self.entries.count - 1)
        } else {
            precondition(self.entries[index].element === element, "an element's slot points at another element")
            let old = self.entries[index].deadline
            self.entries[index].deadline = deadline
            if deadline < old { self.siftUp(from: index) } else { self.siftDown(from: index) }
        }
    }

    /// Removes `element`'s deadline; nothing when it has none.
    mutating func remove(_ element: Element) {
        let index = element.deadlineSlot.index
        guard index >= 0 else { return }
        precondition(self.entries[index].element === element, "an element's slot points at another element")
        element.deadlineSlot.index = -1
        let last = self.entries.count - 1
        if index != last {
            self.entries[index] = self.entries[last]
            self.entries[index].element.deadlineSlot.index = index
            self.entries.removeLast()
            if self.siftUp(from: index) == index { self.siftDown(from: index) }
        } else {
            self.entries.removeLast()
        }
    }

    /// The element whose deadline is earliest, removed, when that deadline is at or before `now`.
    mutating func popDue(at now: NIODeadline) -> Element? {
        guard let first = self.entries.first, first.deadline <= now else { return nil }
        self.remove(first.element)
        return first.element
    }

    @discardableResult
    private mutating func siftUp(from start: Int) -> Int {
        var index = start
        while index > 0 {
            let parent = (index - 1) / 2
            guard self.entries[index].deadline < self.entries[parent].deadline else { break }
            self.swapEntries(index, parent)
            index = parent
        }
        return index
    }

    private mutating func siftDown(from start: Int) {
        var index = start
        let count = self.entries.count
        while true {
            let left = 2 * index + 1
            guard left < count else { return }
            let right = left + 1
            let child = right < count && self.entries[right].deadline < self.entries[left].deadline ? right : left
            guard self.entries[child].deadline < self.entries[index].deadline else { return }
            self.swapEntries(index, child)
            index = child
        }
    }

    private mutating func swapEntries(_ a: Int, _ b: Int) {
        self.entries.swapAt(a, b)
        self.entries[a].element.deadlineSlot.index = a
        self.entries[b].element.deadlineSlot.index = b
    }
}
