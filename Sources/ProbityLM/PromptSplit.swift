// Where a prompt can run as two calls, a prefix several runs share and each run's own rest, as one
// step: hooks see one step (`HookActivations.stepEnd`), and each part keeps the kind of product the
// whole call runs, so a split pass gives every position the bits of one call of the whole prompt.

import ProbityTensor

/// The split point of a prompt shared up to the first position a run may edit.
public enum PromptSplit {
    /// The latest position at or before `first` where a prompt of `length` positions may split, or
    /// nil when none may. Both parts hold at least `QuantizedMatrix.gemmMinBatch` rows, so their
    /// products run the batched kernel the whole call runs (with AVX-512 each output is one chain
    /// of multiply-adds over the columns, whatever the batch and the row's place in it; attention
    /// and the per-row steps depend on nothing but the row); the rest falls in the last chunk of
    /// the whole call, so the chunks are the ones one call would run. Where the batched kernel is
    /// OpenBLAS (no AVX-512), only runs that split at the same point are held to the same bits.
    public static func point(length: Int, first: Int) -> Int? {
        let m = QuantizedMatrix.gemmMinBatch
        guard length > 0, first > 0 else { return nil }
        let q = min(first, length - m)
        // The start of the whole call's last chunk: the split must fall inside it.
        let lastChunk = (length - 1) / sessionChunkSize * sessionChunkSize
        return q - lastChunk >= m ? q : nil
    }
}
