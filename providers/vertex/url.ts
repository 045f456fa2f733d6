/**
 * Vertex AI endpoint URLs: `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
 * publishers/{publisher}/models/{model}:{method}` (location `global` -> host aiplatform.googleapis.com), or
 * `.../endpoints/{id}:{method}` for a deployed endpoint (a numeric model id, or LiteLLM's `gemini/<id>` form).
 * `api_base` replaces the scheme and host (a private endpoint, a proxy); as in LiteLLM it may also be the model's
 * own URL (ending in `/models/<model>` or `/endpoints/<id>`), to which only `:{method}` is added.
 * Reference: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference
 */

/** Vertex's default region when none is configured (LiteLLM's too). */
export const DEFAULT_LOCATION = 'us-central1'

export type Publisher = 'google' | 'anthropic'

export interface VertexPlace {
  project: string
  location: string
  apiBase: string | undefined
}

export function vertexUrl(place: VertexPlace, publisher: Publisher, model: string, method: string): string {
  const endpoint = endpointId(model)
  const tail = endpoint !== undefined ? `endpoints/${endpoint}` : `publishers/${publisher}/models/${model}`
  if (place.apiBase) {
    const b = place.apiBase.endsWith('/') ? place.apiBase.slice(0, -1) : place.apiBase
    if (b.endsWith(`/${tail}:${method}`)) return b
    if (b.endsWith(`/${tail}`)) return `${b}:${method}`
    return `${b}/v1/projects/${place.project}/locations/${place.location}/${tail}:${method}`
  }
  const host = place.location === 'global' ? 'aiplatform.googleapis.com' : `${place.location}-aiplatform.googleapis.com`
  return `https://${host}/v1/projects/${place.project}/locations/${place.location}/${tail}:${method}`
}

/** A deployed endpoint's id: an all-digit model id, or `gemini/<id>` (LiteLLM's name for a tuned Gemini endpoint). */
function endpointId(model: string): string | undefined {
  if (model.startsWith('gemini/')) return model.slice('gemini/'.length)
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  return model.length ? model : undefined
}
