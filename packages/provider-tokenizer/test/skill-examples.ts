export interface CodeBlock {
  language: string;
  code: string;
}

/** The fenced code blocks of a Markdown document, in order. */
export function extractCodeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const pattern = /^```(\w+)\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(pattern)) {
    blocks.push({ language: match[1] ?? '', code: match[2] ?? '' });
  }
  return blocks;
}
