// The trace page's two controls: copy the correlation ID, and open or close every details block.
document.addEventListener("DOMContentLoaded", () => {
  const copy = document.getElementById("copy-id");
  if (copy) {
    copy.addEventListener("click", async () => {
      const text = copy.dataset.copy;
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // Without clipboard access (plain HTTP), select the ID so Ctrl+C copies it.
        const range = document.createRange();
        range.selectNodeContents(document.getElementById("correlation-id"));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      copy.textContent = "Copied";
      setTimeout(() => { copy.textContent = "Copy"; }, 1500);
    });
  }
  const expand = document.getElementById("expand-all");
  if (expand) {
    expand.addEventListener("click", () => {
      const open = expand.getAttribute("aria-pressed") !== "true";
      document.querySelectorAll("#timeline details").forEach((block) => { block.open = open; });
      expand.setAttribute("aria-pressed", String(open));
      expand.textContent = open ? "Collapse all" : "Expand all";
    });
  }
});
