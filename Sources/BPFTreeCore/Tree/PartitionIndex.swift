extension RandomAccessCollection {
    /// The first index whose element satisfies `isAfter`, by binary search; the collection must be
    /// partitioned by it (every element that does not comes first). `endIndex` when none does.
    func partitionIndex(where isAfter: (Element) -> Bool) -> Index {
        var low = startIndex, count = self.count
        while count > 0 {
            let half = count / 2
            let middle = index(low, offsetBy: half)
            if isAfter(self[middle]) {
                count = half
            } else {
                low = index(after: middle)
                count -= half + 1
            }
        }
        return low
    }
}
