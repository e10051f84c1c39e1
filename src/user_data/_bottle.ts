/**
 * md_server's Bottle template forms rewritten into Eta: `{{expr}}` output
 * tags, `% if/elif/else/for/end` control lines, Python operators and
 * constants. Never adds or removes a newline, so Eta's line numbers are the
 * file's.
 *
 * @module
 */

import { TemplateError } from "./errors.ts";

// A Bottle output tag, or a "<%" that opens no tag (text never holds another).
const BOTTLE_OUTPUT_OR_OPEN = /\{\{(!?)[ \t]*([^\n]*?)[ \t]*\}\}|<%/g;
const LITERAL_OPEN = '<%= "<%" %>';
const BOTTLE_LINE =
  /^[ \t]*%[ \t]*(if|elif|else|end|endif|endfor|for|include|rebase|import|from|def|while|try|except|finally|with|return|print|setdefault)\b(.*)$/;
const PY_TOKENS = /'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|\b(and|or|not|None|True|False)\b/g;
const PY_TO_JS: Record<string, string> = {
  and: "&&",
  or: "||",
  not: "!",
  None: "null",
  True: "true",
  False: "false",
};

/** Python operators and constants in a Bottle expression, as JavaScript. */
function _pyExpr(expr: string): string {
  return expr.replace(
    PY_TOKENS,
    (token, word: string | undefined) => word === undefined ? token : ` ${PY_TO_JS[word]} `,
  ).trim();
}

/**
 * Rewrites md_server's Bottle forms into Eta, and normalises whitespace
 * around code tags. Never adds or removes a newline, so Eta's line
 * numbers are the file's.
 */
export function translateBottle(source: string, file: string): string {
  const jinja = /^##[ \t]*template:[ \t]*jinja\b/i.test(source);
  let out = "";
  let pos = 0;
  let dropLeadingBlanks = false;
  while (pos < source.length) {
    const open = source.indexOf("<%", pos);
    if (open === -1 || source.indexOf("%>", open + 2) === -1) {
      // No tag from here on: any "<%" is literal text.
      out += _text(source, pos, source.length, {
        jinja,
        file,
        dropLeadingBlanks,
      });
      break;
    }
    const close = _tagEnd(source, open + 2);
    if (close === -1) {
      // Unterminated string or comment in the tag: let Eta report it.
      out += _text(source, pos, open, { jinja, file, dropLeadingBlanks }) +
        source.slice(open);
      break;
    }
    let text = _text(source, pos, open, { jinja, file, dropLeadingBlanks });
    let tag = source.slice(open, close);
    dropLeadingBlanks = false;
    const lineStart = source.lastIndexOf("\n", open - 1) + 1;
    const standalone = !/^<%[-_]?\s*[=~]/.test(tag) && lineStart >= pos &&
      /^[ \t]*$/.test(source.slice(lineStart, open)) &&
      /^[ \t]*(\r?\n|$)/.test(source.slice(close));
    if (standalone) {
      // A code tag alone on its line takes the whole line with it.
      text = text.replace(/[ \t]*$/, "");
      if (!/[-_]%>$/.test(tag)) tag = `${tag.slice(0, -2)}-%>`;
      dropLeadingBlanks = true;
    }
    out += text + tag;
    pos = close;
  }
  return out;
}

/** Index just past the `%>` closing the tag whose code starts at from, or -1. */
function _tagEnd(source: string, from: number): number {
  let i = from;
  while (i < source.length) {
    const c = source[i];
    if (c === "%" && source[i + 1] === ">") return i + 2;
    if (c === "'" || c === '"' || c === "`") {
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === "\\") i++;
        else if (c !== "`" && source[i] === "\n") return -1;
        i++;
      }
      if (i >= source.length) return -1;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      if (end === -1) return -1;
      i = end + 1;
    }
    i++;
  }
  return -1;
}

/** The text source[start, end) outside any tag, with Bottle forms translated. */
function _text(
  source: string,
  start: number,
  end: number,
  options: { jinja: boolean; file: string; dropLeadingBlanks: boolean },
): string {
  let text = source.slice(start, end);
  if (options.dropLeadingBlanks) text = text.replace(/^[ \t]*/, "");
  if (options.jinja) return text.replaceAll("<%", LITERAL_OPEN);
  const firstLine = source.slice(0, start).split("\n").length;
  const atLineStart = start === 0 || source[start - 1] === "\n";
  return text.split("\n").map((line, index) => {
    const lineNo = firstLine + index;
    if (index > 0 || atLineStart) {
      const control = _bottleLine(line, options.file, lineNo);
      if (control !== null) return control;
    }
    return line.replace(
      BOTTLE_OUTPUT_OR_OPEN,
      (_match, _bang, expr: string | undefined) => {
        if (expr === undefined) return LITERAL_OPEN;
        if (expr === "") {
          throw new TemplateError(
            `Cannot compile template "${options.file}": line ${lineNo}: empty {{ }}`,
            { file: options.file, line: lineNo },
          );
        }
        return `<%= ${_pyExpr(expr)} %>`;
      },
    );
  }).join("\n");
}

/** A Bottle `% …` control line as an Eta code tag; null when line is not one. */
function _bottleLine(
  line: string,
  file: string,
  lineNo: number,
): string | null {
  const match = BOTTLE_LINE.exec(line.replace(/\r$/, ""));
  if (!match) return null;
  const keyword = match[1] ?? "";
  const rest = (match[2] ?? "").trim();
  const cr = line.endsWith("\r") ? "\r" : "";
  const fail = (why: string): never => {
    throw new TemplateError(
      `Cannot compile template "${file}": line ${lineNo}: ${why}`,
      { file, line: lineNo },
    );
  };
  const condition = (): string => {
    if (!rest.endsWith(":") || rest.length === 1) {
      fail(`expected "% ${keyword} <condition>:"`);
    }
    return `__mds.truthy(${_pyExpr(rest.slice(0, -1))})`;
  };
  let code: string;
  switch (keyword) {
    case "if":
      code = `if (${condition()}) {`;
      break;
    case "elif":
      code = `} else if (${condition()}) {`;
      break;
    case "else":
      if (rest !== ":") fail(`expected "% else:"`);
      code = "} else {";
      break;
    case "end":
    case "endif":
    case "endfor":
      code = "}";
      break;
    case "for": {
      const loop = /^([A-Za-z_]\w*)\s+in\s+(.+):$/.exec(rest);
      if (!loop) {
        return fail(`only "% for <name> in <expression>:" is supported`);
      }
      code = `for (const ${loop[1]} of __mds.iter(${_pyExpr(loop[2] ?? "")})) {`;
      break;
    }
    default:
      return fail(
        `Python code lines ("% ${keyword}") are not supported; use Eta <% %> tags`,
      );
  }
  return `<% ${code} -%>${cr}`;
}
