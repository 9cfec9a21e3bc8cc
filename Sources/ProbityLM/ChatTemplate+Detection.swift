// Recognising a Jinja chat template without running it: markers on a normalised text, as llama.cpp's
// llm_chat_detect_template does on the raw text, but stricter: every format names the pieces that fix
// its output, and the features it does not render (tools, dates, default prompts) rule it out.

extension ChatFormat {
    /// What a template must contain (and must not) to render exactly as this format.
    struct Signature {
        var required: [String]
        /// At least one group must be fully present (template variants that render the same).
        var anyOf: [[String]] = []
        var forbidden: [String]

        func matches(_ normalized: String) -> Bool {
            required.allSatisfy(normalized.contains)
                && (anyOf.isEmpty || anyOf.contains { $0.allSatisfy(normalized.contains) })
                && !forbidden.contains(where: normalized.contains)
        }
    }

    // Markers are in `TemplateText.normalize` form: no whitespace outside string literals, every
    // literal in single quotes with its escapes decoded, no `-` whitespace control on tags.
    var signature: Signature {
        let chatmlBody = "{%formessageinmessages%}"
        let chatmlTurn = "'<|im_start|>'+message['role']+'\n'+message['content']+'<|im_end|>'+'\n'"
        let chatmlGeneration = "{%ifadd_generation_prompt%}{{'<|im_start|>assistant\n'}}{%endif%}"
        let unrendered = ["bos_token", "eos_token", "tools", "raise_exception", "<|im_sep|>", "<end_of_utterance>", "<think>"]
        switch self {
        case .chatmlSmolLM:
            return Signature(
                required: [chatmlBody, chatmlTurn, chatmlGeneration,
                           "{%ifloop.firstandmessages[0]['role']!='system'%}{{'<|im_start|>system\n"
                               + Self.smolLMDefaultSystem + "<|im_end|>\n'}}{%endif%}"],
                forbidden: unrendered)
        case .chatml:
            return Signature(
                required: [chatmlBody, chatmlTurn, chatmlGeneration],
                forbidden: unrendered + ["'<|im_start|>system", "loop.first", "messages[0]", "loop.index"])
        case .llama3:
            return Signature(
                required: ["{%setloop_messages=messages%}{%formessageinloop_messages%}",
                           "{%setcontent='<|start_header_id|>'+message['role']+'<|end_header_id|>\n\n'"
                               + "+message['content']|trim+'<|eot_id|>'%}",
                           "{%ifloop.index0==0%}{%setcontent=bos_token+content%}{%endif%}{{content}}{%endfor%}",
                           "{%ifadd_generation_prompt%}{{'<|start_header_id|>assistant<|end_header_id|>\n\n'}}{%endif%}"],
                forbidden: ["Cutting Knowledge Date", "date_string", "tools", "system_message", "raise_exception"])
        case .gemma:
            return Signature(
                required: ["{{bos_token}}",
                           "{%if(message['role']=='user')!=(loop.index0%2==0)%}",
                           "{%if(message['role']=='assistant')%}{%setrole='model'%}{%else%}{%setrole=message['role']%}{%endif%}",
                           "{%ifadd_generation_prompt%}{{'<start_of_turn>model\n'}}{%endif%}"],
                anyOf: [
                    // Gemma 3: the system message prefixes the first turn.
                    ["{%setfirst_user_prefix=messages[0]['content']+'\n\n'%}{%else%}",
                     "{%setloop_messages=messages[1:]%}",
                     "{%setfirst_user_prefix=''%}{%setloop_messages=messages%}",
                     "{%formessageinloop_messages%}",
                     "{{'<start_of_turn>'+role+'\n'+(first_user_prefixifloop.firstelse'')}}",
                     "{{message['content']|trim}}",
                     "{{'<end_of_turn>\n'}}"],
                    // Gemma 1/2: no system role at all.
                    ["{%ifmessages[0]['role']=='system'%}{{raise_exception('System role not supported')}}{%endif%}",
                     "{%formessageinmessages%}",
                     "{{'<start_of_turn>'+role+'\n'+message['content']|trim+'<end_of_turn>\n'}}"],
                ],
                forbidden: ["tools", "tool_calls", "eos_token"])
        case .mistralInstruct:
            return Signature(
                required: ["{{bos_token}}{%formessageinmessages%}",
                           "{%if(message['role']=='user')!=(loop.index0%2==0)%}",
                           "{%ifmessage['role']=='user'%}{{'[INST] '+message['content']+' [/INST]'}}",
                           "{%elifmessage['role']=='assistant'%}{{message['content']+eos_token}}{%else%}"],
                forbidden: ["system_message", "[SYSTEM_PROMPT]", "[AVAILABLE_TOOLS]", "<<SYS>>", "tools"])
        }
    }
}

/// Text helpers shared by detection and rendering.
enum TemplateText {
    /// Reduces a Jinja template to a form where harmless differences vanish: whitespace outside
    /// string literals is dropped, `{%-`/`-%}` whitespace control becomes `{%`/`%}`, comments go,
    /// literals are re-quoted with `'` and their escapes (`\n`, `\t`, `\\`, `\'`) decoded. Text
    /// inside literals, which is what a template writes, is kept exactly.
    static func normalize(_ template: String) -> String {
        let s = Array(template.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        var inTag = false
        var quote: Unicode.Scalar?
        func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }
        while i < s.count {
            let c = s[i]
            if let q = quote {
                if c == "\\", let next = at(i + 1) {
                    switch next {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    default: out.append(next)
                    }
                    i += 2
                } else if c == q {
                    out.append("'")
                    quote = nil
                    i += 1
                } else {
                    out.append(c)
                    i += 1
                }
                continue
            }
            if !inTag {
                if c == "{", at(i + 1) == "#" {
                    // A comment: skip to its end (or to the end of the text).
                    var j = i + 2
                    while j < s.count, !(s[j] == "#" && at(j + 1) == "}") { j += 1 }
                    i = j + 2
                } else if c == "{", let next = at(i + 1), next == "{" || next == "%" {
                    out.append(c)
                    out.append(next)
                    inTag = true
                    i += 2
                    if at(i) == "-" || at(i) == "+" { i += 1 }
                } else {
                    if !c.properties.isWhitespace { out.append(c) }
                    i += 1
                }
                continue
            }
            if c == "'" || c == "\"" {
                quote = c
                out.append("'")
                i += 1
            } else if c == "-", let next = at(i + 1), next == "}" || next == "%", at(i + 2) == "}" {
                i += 1
            } else if (c == "}" || c == "%"), at(i + 1) == "}" {
                out.append(c)
                out.append("}")
                inTag = false
                i += 2
            } else {
                if !c.properties.isWhitespace { out.append(c) }
                i += 1
            }
        }
        return String(out)
    }

    /// A loose guess at the family of a template none of our formats matched, for the error message.
    static func family(of normalized: String) -> String? {
        if normalized.contains("<|im_start|>") { return "ChatML" }
        if normalized.contains("<|start_header_id|>") { return "Llama 3" }
        if normalized.contains("<start_of_turn>") { return "Gemma" }
        if normalized.contains("[INST]") { return "Mistral/Llama 2 [INST]" }
        return nil
    }

    /// The template's first characters on one line, for error messages.
    static func excerpt(_ template: String, limit: Int = 72) -> String {
        var flat = ""
        for scalar in template.unicodeScalars {
            if flat.unicodeScalars.count >= limit { return flat + "..." }
            switch scalar {
            case "\n": flat += "\\n"
            case "\t": flat += "\\t"
            case "\r": flat += "\\r"
            default: flat.unicodeScalars.append(scalar)
            }
        }
        return flat
    }

    /// Jinja's `trim` filter, which is Python's `str.strip()`: removes leading and trailing
    /// characters for which `str.isspace()` holds. That is Unicode White_Space plus the
    /// information separators U+001C...U+001F.
    static func trim(_ text: String) -> String {
        func isSpace(_ c: Unicode.Scalar) -> Bool {
            c.properties.isWhitespace || (0x1C...0x1F).contains(c.value)
        }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[first...last])
    }
}
